"""The one training loop: full-batch optax steps in a single ``lax.scan``.

A step is ``updates, state = optimizer.update(grad L(w), state, w)``,
``w <- optax.apply_updates(w, updates)``; plain gradient descent
``w <- w - lr * grad L(w)`` is ``optax.sgd(lr)``, and special rules (the
proximal gate step of chapter 5, the normalised step of chapter 6) are optax
``GradientTransformation``\\ s in the modules of their concepts. Diagnostics
are evaluated every ``record_every`` steps by an outer scan; no Python runs
per step.

``train`` is a pure, traceable function with no cache of its own: the jit
boundary is the caller's. Wrap the whole experiment in ``jax.jit`` with the
data, keys and hyper-parameters as *arguments* (not closed-over constants)
and ``jax.vmap`` it over seeds; then a sweep compiles once, and XLA never
constant-folds the data::

    @jax.jit
    def run(key, x, y):
        params = model.init_fn(key)
        return nk.train(nk.mse_loss(model.apply_fn, x, y), params, optax.sgd(0.5),
                        num_steps=1000)

    results = jax.vmap(run, in_axes=(0, None, None))(keys, x, y)

Called eagerly (outside ``jit``) it still works, but compiles on every call.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainResult", "train", "gradient_descent", "mse_loss"]


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
    """Return ``L(params) = (1/2n) sum_i |f(params; x_i) - y_i|^2``.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, k)``.
      x: ``(n, d)`` inputs.
      y: ``(n, k)`` targets, or ``(n,)`` when ``k = 1``.
    """

    def loss(params):
        out = apply_fn(params, x)
        return 0.5 * jnp.sum((out - jnp.reshape(y, out.shape)) ** 2) / out.shape[0]

    return loss


def _check_steps(num_steps, record_every):
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if (not isinstance(record_every, int) or isinstance(record_every, bool)
            or record_every < 1 or num_steps % record_every):
        raise ValueError(f"record_every must be a positive int dividing num_steps={num_steps}, "
                         f"got {record_every!r}")


def train(loss_fn: Callable, params, optimizer: optax.GradientTransformation, *,
          num_steps: int, metrics_fn: Callable | None = None,
          record_every: int = 1) -> TrainResult:
    """Minimise ``loss_fn(params)`` with an optax optimiser in one ``lax.scan``.

    Args:
      loss_fn: scalar objective of the pytree ``params`` (data bound by closure;
        under the caller's ``jit`` the data are traced arguments).
      params: initial pytree.
      optimizer: an ``optax.GradientTransformation``.
      num_steps: number of steps T (a multiple of ``record_every``).
      metrics_fn: optional ``metrics_fn(params) -> pytree of arrays``.
      record_every: evaluate ``metrics_fn`` every this many steps.

    Returns:
      ``TrainResult``.
    """
    _check_steps(num_steps, record_every)
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, _):
        p, state = carry
        loss, grad = value_and_grad(p)
        updates, state = optimizer.update(grad, state, p)
        return (optax.apply_updates(p, updates), state), loss

    carry = (params, optimizer.init(params))
    if metrics_fn is None:
        (final, _), losses = jax.lax.scan(step, carry, None, length=num_steps)
        return TrainResult(final, jnp.append(losses, loss_fn(final)), None)

    # metrics_fn appears once in the program: iteration i records it at step
    # i * record_every, then runs the next record_every steps (none after the last)
    num_chunks = num_steps // record_every
    no_losses = jnp.zeros(record_every, jax.eval_shape(loss_fn, params).dtype)

    def chunk(carry, i):
        metrics = metrics_fn(carry[0])
        carry, losses = jax.lax.cond(
            i < num_chunks, lambda c: jax.lax.scan(step, c, None, length=record_every),
            lambda c: (c, no_losses), carry)
        return carry, (losses, metrics)

    (final, _), (losses, history) = jax.lax.scan(chunk, carry, jnp.arange(num_chunks + 1))
    losses = jnp.append(losses[:-1].reshape(-1), loss_fn(final))
    return TrainResult(final, losses, history)


def gradient_descent(loss_fn: Callable, params, *, learning_rate, num_steps: int,
                     metrics_fn: Callable | None = None,
                     record_every: int = 1) -> TrainResult:
    """Full-batch GD ``w_{t+1} = w_t - lr * grad L(w_t)``: ``train`` with ``optax.sgd(lr)``.

    ``learning_rate`` may be a traced value (e.g. under ``jax.vmap`` over
    learning rates), in which case it is not validated here.
    """
    if not isinstance(learning_rate, jax.core.Tracer) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    return train(loss_fn, params, optax.sgd(learning_rate), num_steps=num_steps,
                 metrics_fn=metrics_fn, record_every=record_every)
