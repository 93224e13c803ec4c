"""Full-batch training loops compiled with ``lax.scan``.

One optimiser step is ``updates, state = opt.update(grad, state, params)``
(optax 0.2); plain gradient descent is ``optax.sgd(lr)``, i.e.
``w <- w - lr * grad L(w)``. The whole loop is one compiled ``lax.scan``:
no Python runs per step. Diagnostics are evaluated every ``record_every``
steps by an outer scan.
"""
from __future__ import annotations

from functools import partial
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
      metrics: pytree of arrays with leading axis ``num_records + 1``
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


@partial(jax.jit, static_argnames=("loss_fn", "optimizer", "num_steps",
                                   "metrics_fn", "record_every"))
def _train(loss_fn, params, optimizer, num_steps, metrics_fn, record_every):
    value_and_grad = jax.value_and_grad(loss_fn)

    def step(carry, _):
        p, state = carry
        loss, grad = value_and_grad(p)
        updates, state = optimizer.update(grad, state, p)
        return (optax.apply_updates(p, updates), state), loss

    def chunk(carry, _):
        carry, losses = jax.lax.scan(step, carry, None, length=record_every)
        return carry, (losses, metrics_fn(carry[0]) if metrics_fn else None)

    carry = (params, optimizer.init(params))
    metrics0 = metrics_fn(params) if metrics_fn else None
    (params, _), (losses, metrics) = jax.lax.scan(
        chunk, carry, None, length=num_steps // record_every)
    losses = jnp.concatenate([losses.reshape(-1), loss_fn(params)[None]])
    if metrics_fn:
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]),
                               metrics0, metrics)
    return TrainResult(params, losses, metrics)


def train(loss_fn: Callable, params, optimizer, *, num_steps: int,
          metrics_fn: Callable | None = None, record_every: int = 1) -> TrainResult:
    """Minimise ``loss_fn(params)`` with an optax optimiser, fully compiled.

    Args:
      loss_fn: scalar objective of the pytree ``params`` (data bound by
        closure). Must be hashable: pass the same function object to reuse
        the compiled loop.
      params: initial pytree.
      optimizer: an ``optax.GradientTransformation``.
      num_steps: number of steps T (a multiple of ``record_every``).
      metrics_fn: optional ``metrics_fn(params) -> pytree of arrays``.
      record_every: evaluate ``metrics_fn`` every this many steps.

    Returns:
      ``TrainResult``.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if not isinstance(record_every, int) or record_every < 1 or num_steps % record_every:
        raise ValueError(
            f"record_every must be a positive int dividing num_steps={num_steps}, "
            f"got {record_every!r}")
    return _train(loss_fn, params, optimizer, num_steps, metrics_fn, record_every)


def gradient_descent(loss_fn: Callable, params, *, learning_rate: float, num_steps: int,
                     metrics_fn: Callable | None = None,
                     record_every: int = 1) -> TrainResult:
    """Plain full-batch GD ``w_{t+1} = w_t - lr * grad L(w_t)``; see ``train``."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    return train(loss_fn, params, optax.sgd(learning_rate), num_steps=num_steps,
                 metrics_fn=metrics_fn, record_every=record_every)
