"""Minibatch training through the one training loop, ``ntkbook.training.train``.

``train`` minimises a deterministic ``fn(params)``. Stochastic gradient
descent is gradient descent on a *step-indexed* objective: at step t the loss
of the minibatch ``B_t``, drawn with ``fold_in(key, t)``. We carry t with the
parameters, ``state = {"params": params, "step": t}`` (``t`` a float scalar,
so that ``jax.grad`` accepts it; its gradient is 0), and ``count_steps`` wraps
an optimiser so that it updates ``params`` and adds 1 to ``step``:

    state = nk.minibatch.start(params)
    fn = nk.minibatch.objective(loss_fn, x, labels, key=key, batch_size=128)
    result = nk.train(fn, state, nk.minibatch.count_steps(optax.adam(1e-3)), num_steps=T)
    params = result.params["params"]

``B_t`` has ``batch_size`` indices drawn uniformly with replacement.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["start", "objective", "CountStepsState", "count_steps"]


def start(params, step: float = 0.0):
    """``{"params": params, "step": step}``: the state that ``objective`` and ``count_steps`` use."""
    dtype = jax.tree.leaves(params)[0].dtype
    return {"params": params, "step": jnp.asarray(step, dtype)}


def objective(loss_fn: Callable, x, labels, *, key, batch_size: int) -> Callable:
    """The minibatch loss ``fn(state) = loss_fn(params, x[B_t], labels[B_t])`` at step ``t``.

    ``B_t = randint(fold_in(key, t), (batch_size,), 0, n)``: i.i.d. uniform
    indices, a new draw at every step, the same draw for the same key and t.

    Args:
      loss_fn: ``loss_fn(params, x_batch, labels_batch) -> scalar``.
      x: ``(n, ...)`` inputs; labels: ``(n, ...)`` targets.
      key: PRNG key of the minibatch sequence.
      batch_size: number of examples per step.

    Returns:
      ``fn(state) -> scalar`` for ``nk.train``, ``state`` as made by ``start``.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")

    def fn(state):
        t = jax.lax.stop_gradient(state["step"]).astype(jnp.int32)
        idx = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, x.shape[0])
        return loss_fn(state["params"], x[idx], labels[idx])

    return fn


class CountStepsState(NamedTuple):
    """State of ``count_steps``: the wrapped optimiser's state."""

    inner: optax.OptState


def count_steps(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """Wrap ``optimizer`` for ``{"params", "step"}`` states: it updates ``params``, ``step += 1``."""
    def init_fn(state):
        return CountStepsState(optimizer.init(state["params"]))

    def update_fn(grads, opt_state, state=None):
        params = None if state is None else state["params"]
        updates, inner = optimizer.update(grads["params"], opt_state.inner, params)
        return {"params": updates, "step": jnp.ones_like(grads["step"])}, CountStepsState(inner)

    return optax.GradientTransformation(init_fn, update_fn)
