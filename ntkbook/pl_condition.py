"""The PL* condition: optimisation without linearity.

For the square loss ``L(w) = ||F(w) - y||^2 / (2n)`` on n training inputs,
with residual ``r = F(w) - y`` and tangent kernel ``K = J J^T``
(``J = dF/dw``, shape ``(n, P)``)::

    grad L = J^T r / n,   ||grad L||^2 = r^T K r / n^2 >= 2 (lambda_min(K) / n) L.

So the loss satisfies the Polyak-Lojasiewicz inequality ``||grad L||^2 >=
2 mu L`` with ``mu = lambda_min(K) / n`` wherever K is well conditioned, and
gradient descent with a step ``eta <= 1 / beta`` contracts the loss,
``L_{t+1} <= (1 - eta mu) L_t``, with no convexity and no constant kernel
needed (Liu, Zhu, Belkin 2022, arXiv 2003.00307, Sec. 3-4: the PL*
condition, which wide networks satisfy near initialisation, with or without
a non-linear output layer).

Functions: ``pl_constant`` (mu from K) and ``tangent_kernel_metrics`` (a
``metrics_fn`` for ``ntkbook.training.train`` that records K and
``||grad L||^2`` along training).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .ntk import empirical_ntk

__all__ = ["pl_constant", "tangent_kernel_metrics"]


def pl_constant(ntk):
    """PL* constant ``mu = lambda_min(K) / n`` of the loss ``L = ||F - y||^2 / (2n)``.

    ``grad_w L = J^T (F - y) / n``, so ``||grad L||^2 = r^T K r / n^2 >=
    lambda_min(K) ||r||^2 / n^2 = 2 (lambda_min(K) / n) L`` (Liu, Zhu, Belkin
    2022, arXiv 2003.00307, Sec. 3: PL* with mu = lambda_min(K)); GD with a
    step ``eta <= 1 / beta`` then contracts ``L_{t+1} <= (1 - eta mu) L_t``.

    Args:
      ntk: ``(..., n, n)`` tangent kernel(s) on the training inputs.

    Returns:
      ``(...)`` array of mu.
    """
    ntk = jnp.asarray(ntk)
    if ntk.ndim < 2 or ntk.shape[-1] != ntk.shape[-2]:
        raise ValueError(f"ntk must have shape (..., n, n), got {ntk.shape}")
    return jnp.linalg.eigvalsh(ntk)[..., 0] / ntk.shape[-1]


def tangent_kernel_metrics(apply_fn: Callable, loss_fn: Callable, x) -> Callable:
    """``metrics_fn(params) -> {"ntk": (n, n), "grad_sq_norm": ()}`` for ``ntkbook.training.train``.

    Records the whole empirical tangent kernel (cheap for the n <= 100
    training points of this book) so that ``lambda_min``, the kernel change
    and the PL* constant can all be computed afterwards, plus
    ``||grad_w L||^2`` to check the PL* inequality ``||grad L||^2 >= 2 mu L``.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      loss_fn: scalar ``L(params)``.
      x: ``(n, d)`` training inputs.
    """
    def metrics_fn(params):
        grad = jax.grad(loss_fn)(params)
        grad_sq = sum(jnp.vdot(g, g) for g in jax.tree.leaves(grad))
        return {"ntk": empirical_ntk(apply_fn, params, x), "grad_sq_norm": grad_sq}

    return metrics_fn
