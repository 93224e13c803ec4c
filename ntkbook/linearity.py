"""Transition to linearity: the quantities of Liu, Zhu, Belkin 2020, as primitives.

Liu, Zhu, Belkin 2020 (arXiv 2010.01092) explain why the tangent
kernel ``K_w(x, x') = <grad_w f(w; x), grad_w f(w; x')>`` of a wide network is
constant during training: by Taylor's theorem with the Hessian
``H(w) = d^2 f(w; x) / dw^2``, on the ball ``B(w0, R) = {||w - w0|| <= R}``,

    ||grad f(w) - grad f(w0)|| <= sup_{B(w0, R)} ||H|| * R,
    |f(w) - f_lin(w)| <= sup_{B(w0, R)} ||H|| * R^2 / 2,

and for networks whose last layer is linear ``||H|| = O~(m^-1/2)`` in the
width m while ``||grad f|| = O(1)``. Every function here is a pure, traceable
function of one model and one draw, so a chapter (or a reader pointing it at
their own model) ``jax.jit``-s and ``jax.vmap``-s it over seeds:

    stats = jax.jit(jax.vmap(lambda k: nk.linearity.init_norms(model, x, k)))
    hess, grad = stats(jax.random.split(key, 8))     # (8,), (8,)

A model follows ``ntkbook.models``: ``init_fn(key) -> params``,
``apply_fn(params, x: (n, d)) -> (n, 1)``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .hessian import single_input, top_abs_eigenvalue
from .models import Model
from .ntk import empirical_ntk, kernel_change

__all__ = ["grad_norm", "hessian_norm", "init_norms", "taylor_remainder", "ball_point",
           "path_metrics"]


def grad_norm(apply_fn: Callable, params, x):
    """Euclidean norm ``||grad_w f(w; x)||`` over all parameters (a ``()`` array).

    Its square is the diagonal of the tangent kernel, ``K_w(x, x)``.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params: pytree w.
      x: ``(d,)`` or ``(1, d)`` input.
    """
    x = single_input(x)[None]
    grad = jax.grad(lambda p: apply_fn(p, x)[0, 0])(params)
    return jnp.linalg.norm(ravel_pytree(grad)[0])


def hessian_norm(apply_fn: Callable, params, x, *, key, num_iters: int = 30):
    """Spectral norm ``||d^2 f(w; x) / dw^2||_2`` at one input (a ``()`` array).

    Lanczos on Hessian-vector products (``ntkbook.hessian.top_abs_eigenvalue``);
    30 steps reach ~1e-5 relative accuracy on the MLPs of this book.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params: pytree w.
      x: ``(d,)`` or ``(1, d)`` input.
      key: PRNG key for the Lanczos start vector.
      num_iters: Lanczos steps (>= 2).
    """
    x = single_input(x)[None]
    return top_abs_eigenvalue(lambda p: apply_fn(p, x)[0, 0], params, key, num_iters)


def init_norms(model: Model, x, key, *, num_iters: int = 30):
    """``(||H(w0; x)||_2, ||grad f(w0; x)||)`` for one initialisation ``w0 = init_fn(k1)``.

    ``k1, k2 = split(key)``; ``k2`` starts the Lanczos recurrence. Liu, Zhu,
    Belkin 2020: ``O~(m^-1/2)`` and ``O(1)`` when the last layer is linear.

    Returns:
      Two ``()`` arrays.
    """
    init_key, lanczos_key = jax.random.split(key)
    params = model.init_fn(init_key)
    return (hessian_norm(model.apply_fn, params, x, key=lanczos_key, num_iters=num_iters),
            grad_norm(model.apply_fn, params, x))


def taylor_remainder(apply_fn: Callable, params0, params, x):
    """Distance to the linearisation: ``f(w; x) - f_lin(w; x)``, shape ``(n, 1)``.

    ``f_lin(w; x) = f(w0; x) + <grad_w f(w0; x), w - w0>`` (one JVP). By
    Taylor's theorem ``|f - f_lin| <= sup ||H|| * ||w - w0||^2 / 2`` on the
    segment [w0, w] (Liu, Zhu, Belkin 2020, Sec. 2).

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params0: pytree w0 (the linearisation point).
      params: pytree w, same structure.
      x: ``(n, d)`` inputs.
    """
    if jax.tree.structure(params0) != jax.tree.structure(params):
        raise ValueError("params0 and params must have the same pytree structure")
    if jnp.ndim(x) != 2:
        raise ValueError(f"x must be an (n, d) array, got shape {jnp.shape(x)}")
    delta = jax.tree.map(jnp.subtract, params, params0)
    f0, df = jax.jvp(lambda p: apply_fn(p, x), (params0,), (delta,))
    return apply_fn(params, x) - f0 - df


def ball_point(params0, radius, key):
    """A point drawn uniformly from the ball ``B(w0, R) = {w : ||w - w0|| <= R}``.

    ``w = w0 + R U^{1/P} u / ||u||`` with ``u ~ N(0, I_P)`` and
    ``U ~ Uniform(0, 1)``, P the number of parameters (for large P nearly
    every point of the ball lies close to its boundary sphere).

    Args:
      params0: pytree w0 with P entries.
      radius: R >= 0 (may be traced).
      key: PRNG key.

    Returns:
      Pytree like ``params0``.
    """
    flat, unravel = ravel_pytree(params0)
    dir_key, r_key = jax.random.split(key)
    u = jax.random.normal(dir_key, flat.shape, flat.dtype)
    scale = radius * jax.random.uniform(r_key, (), flat.dtype) ** (1.0 / flat.size)
    return unravel(flat + scale * u / jnp.linalg.norm(u))


def path_metrics(apply_fn: Callable, params0, x) -> Callable:
    """``metrics_fn(w)`` for ``ntkbook.training.train``: how far w is from linear at w0.

    For the training inputs ``x: (n, d)`` and ``K0 = K_{w0}``, the returned
    function gives a dict of ``()`` arrays:

    * ``ntk_change``: ``||K_w - K0||_F / ||K0||_F``;
    * ``linearization_gap``: RMS over x of ``f(w) - f_lin(w)``;
    * ``distance``: ``||w - w0||`` (the radius R actually used);
    * ``gauss_newton_norm``: ``lambda_max(K_w) / n``, the norm of the
      Gauss-Newton part ``J^T J / n`` of the squared-loss Hessian.
    """
    ntk0 = empirical_ntk(apply_fn, params0, x)

    def metrics(params):
        ntk = empirical_ntk(apply_fn, params, x)
        gap = taylor_remainder(apply_fn, params0, params, x)
        delta = ravel_pytree(jax.tree.map(jnp.subtract, params, params0))[0]
        return dict(ntk_change=kernel_change(ntk0, ntk),
                    linearization_gap=jnp.sqrt(jnp.mean(gap ** 2)),
                    distance=jnp.linalg.norm(delta),
                    gauss_newton_norm=jnp.linalg.eigvalsh(ntk)[-1] / x.shape[0])

    return metrics
