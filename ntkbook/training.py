"""Full-batch training loops compiled with ``lax.scan``.

Plain gradient descent is ``w <- w - lr * grad L(w)``; any optax optimiser
(``updates, state = opt.update(grad, state, params)``) also works. The whole
loop is one compiled ``lax.scan``: no Python runs per step. Diagnostics are
evaluated every ``record_every`` steps by an outer scan.

Compilation is shared across calls: the arrays a loss closes over (data, a
linearisation point) are hoisted out of its jaxpr and passed to the compiled
loop as arguments, and compiled loops are cached by the structure of the
program, so a sweep over seeds (same shapes, new data or weights) compiles
once and XLA never constant-folds the data.
"""
from __future__ import annotations

from functools import lru_cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainResult", "train", "gradient_descent", "mse_loss", "hoist_constants"]


class TrainResult(NamedTuple):
    """Output of ``train``.

    Attributes:
      params: final parameters.
      losses: ``(num_steps + 1,)`` loss before each step and after the last.
      metrics: pytree of arrays with leading axis ``num_steps // record_every + 1``
        (``metrics_fn`` at steps 0, r, 2r, ..., num_steps), or None.
    """

    params: Any
    losses: jnp.ndarray
    metrics: Any


def mse_loss(apply_fn: Callable, x, y) -> Callable:
    """Return ``L(params) = (1/2n) sum_i (f(params; x_i) - y_i)^2``.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      x: ``(n, d)`` inputs.
      y: ``(n, 1)`` or ``(n,)`` targets.
    """
    y = jnp.reshape(y, (-1, 1))

    def loss(params):
        return 0.5 * jnp.mean((apply_fn(params, x) - y) ** 2)

    return loss


_HOISTED: dict = {}


def hoist_constants(fn: Callable, params):
    """Rewrite ``fn(params)`` as ``fn_c(params, consts)`` with its closure hoisted.

    Every array ``fn`` closes over becomes an entry of ``consts`` (a tuple);
    ``fn_c`` is shared by all functions with the same program (same jaxpr),
    so ``jax.jit`` compiled on it is reused.

    Returns:
      ``(fn_c, consts)`` with ``fn_c(params, consts) == fn(params)``.
    """
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(params)
    in_tree = jax.tree.structure(params)
    out_tree = jax.tree.structure(out_shape)
    key = (str(closed.jaxpr), in_tree, out_tree)
    if key not in _HOISTED:
        jaxpr = closed.jaxpr

        def fn_c(p, consts):
            out = jax.core.eval_jaxpr(jaxpr, list(consts), *jax.tree.leaves(p))
            return jax.tree.unflatten(out_tree, out)

        _HOISTED[key] = fn_c
    return _HOISTED[key], tuple(closed.consts)


def _gd_update(grad, state, params, learning_rate):
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grad), state


@lru_cache(maxsize=None)
def _optax_update(optimizer):
    def update(grad, state, params, _):
        updates, state = optimizer.update(grad, state, params)
        return optax.apply_updates(params, updates), state

    return update


@partial(jax.jit, static_argnames=("loss_fn", "update_fn", "metrics_fn", "num_steps",
                                   "record_every"))
def _run(loss_fn, loss_consts, params, update_fn, state, hyper, metrics_fn,
         metrics_consts, num_steps, record_every):
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, _):
        p, s = carry
        loss, grad = value_and_grad(p, loss_consts)
        return update_fn(grad, s, p, hyper), loss

    def metrics(p):
        return metrics_fn(p, metrics_consts) if metrics_fn else None

    def chunk(carry, _):
        carry, losses = jax.lax.scan(step, carry, None, length=record_every)
        return carry, (losses, metrics(carry[0]))

    metrics0 = metrics(params)
    (params, _), (losses, history) = jax.lax.scan(
        chunk, (params, state), None, length=num_steps // record_every)
    losses = jnp.concatenate([losses.reshape(-1), loss_fn(params, loss_consts)[None]])
    if metrics_fn:
        history = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), metrics0, history)
    return TrainResult(params, losses, history)


def _check_steps(num_steps, record_every):
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if not isinstance(record_every, int) or record_every < 1 or num_steps % record_every:
        raise ValueError(f"record_every must be a positive int dividing num_steps={num_steps}, "
                         f"got {record_every!r}")


def _fit(loss_fn, params, update_fn, state, hyper, metrics_fn, num_steps, record_every):
    _check_steps(num_steps, record_every)
    loss_c, loss_consts = hoist_constants(loss_fn, params)
    metrics_c, metrics_consts = (hoist_constants(metrics_fn, params) if metrics_fn
                                 else (None, ()))
    return _run(loss_c, loss_consts, params, update_fn, state, hyper, metrics_c,
                metrics_consts, num_steps, record_every)


def train(loss_fn: Callable, params, optimizer, *, num_steps: int,
          metrics_fn: Callable | None = None, record_every: int = 1) -> TrainResult:
    """Minimise ``loss_fn(params)`` with an optax optimiser, fully compiled.

    Args:
      loss_fn: scalar objective of the pytree ``params`` (data bound by closure).
      params: initial pytree.
      optimizer: an ``optax.GradientTransformation`` (reuse the same object to
        reuse the compiled loop).
      num_steps: number of steps T (a multiple of ``record_every``).
      metrics_fn: optional ``metrics_fn(params) -> pytree of arrays``.
      record_every: evaluate ``metrics_fn`` every this many steps.

    Returns:
      ``TrainResult``.
    """
    return _fit(loss_fn, params, _optax_update(optimizer), optimizer.init(params), None,
                metrics_fn, num_steps, record_every)


def gradient_descent(loss_fn: Callable, params, *, learning_rate: float, num_steps: int,
                     metrics_fn: Callable | None = None,
                     record_every: int = 1) -> TrainResult:
    """Full-batch GD ``w_{t+1} = w_t - lr * grad L(w_t)``; arguments as in ``train``.

    The learning rate is a runtime argument: changing it does not recompile,
    and it may be a traced value (e.g. under ``jax.vmap`` over seeds), in
    which case it is not validated here.
    """
    if not isinstance(learning_rate, jax.core.Tracer) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    lr = jnp.asarray(learning_rate, dtype=jax.tree.leaves(params)[0].dtype)
    return _fit(loss_fn, params, _gd_update, (), lr, metrics_fn, num_steps, record_every)
