"""Matrix-free Hessian work: Hessian-vector products and the spectral norm.

For a scalar function ``fn(params)`` of a pytree, ``hvp`` is the
forward-over-reverse product ``H v = d/de grad fn(params + e v)|_{e=0}``
(Pearlmutter 1994), which costs a small constant times one gradient and
never forms H. ``spectral_norm`` runs the Lanczos three-term recurrence on
these products (Golub & Van Loan, *Matrix Computations*, Alg. 10.1.1)
and returns the largest |eigenvalue| of the tridiagonal matrix.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = ["hvp", "spectral_norm", "top_abs_eigenvalue", "lanczos_tridiagonal", "dense_hessian", "output_fn", "single_input"]


def hvp(fn, params, v):
    """Hessian-vector product ``H v`` with ``H = d^2 fn / d params^2``.

    Args:
      fn: scalar function of the pytree ``params``.
      params: pytree w.
      v: pytree with the structure of ``params``.

    Returns:
      Pytree like ``params``: ``H v``.
    """
    return jax.jvp(jax.grad(fn), (params,), (v,))[1]


def _tree_vdot(a, b):
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _split(flat, params):
    """The ``(P,)`` vector ``flat`` as a pytree like ``params`` (``ravel_pytree`` order)."""
    leaves, treedef = jax.tree.flatten(params)
    offsets = np.cumsum([0] + [leaf.size for leaf in leaves])
    return jax.tree.unflatten(treedef, [flat[o:o + leaf.size].reshape(leaf.shape).astype(leaf.dtype)
                                        for o, leaf in zip(offsets, leaves)])


def _recurrence(fn, params, v0, num_iters):
    """Lanczos on pytrees: one HVP and a few fused vector passes per step.

    One step per scan iteration. (A body of two steps, which lets the two
    vector buffers swap roles instead of being copied, ran no faster in
    ``benchmarks/bench_speed.py`` at widths 256-2048 and compiled ~25% slower:
    the Lanczos loop is compiled once per experiment in the chapters.)
    """

    def step(carry, _):
        v_prev, v, b_prev = carry
        w = jax.tree.map(lambda hv, u: hv - b_prev * u, hvp(fn, params, v), v_prev)
        a = _tree_vdot(w, v)
        w = jax.tree.map(lambda x, u: x - a * u, w, v)
        b = jnp.sqrt(_tree_vdot(w, w))
        inv = jnp.where(b > 0, 1.0 / jnp.where(b > 0, b, 1.0), 0.0)
        return (v, jax.tree.map(lambda x: x * inv, w), b), (a, b)

    norm = jnp.sqrt(_tree_vdot(v0, v0))
    v0 = jax.tree.map(lambda x: x / norm, v0)
    carry = (jax.tree.map(jnp.zeros_like, v0), v0, jnp.zeros((), norm.dtype))
    _, (alpha, beta) = jax.lax.scan(step, carry, None, length=num_iters)
    return alpha, beta[:-1]


@partial(jax.jit, static_argnums=(0, 3))
def lanczos_tridiagonal(fn, params, v0, num_iters):
    """``num_iters`` Lanczos steps on the Hessian of ``fn`` at ``params``.

    Three-term recurrence without reorthogonalisation (Golub & Van Loan,
    Alg. 10.1.1): ``w = H v_i - beta_{i-1} v_{i-1}``, ``alpha_i = <w, v_i>``,
    ``w -= alpha_i v_i``, ``beta_i = |w|``, ``v_{i+1} = w / beta_i``. The
    vectors stay pytrees like ``params`` (no ravel/unravel copies per step) and
    the whole loop is one ``lax.scan``: per step one HVP and a few fused
    passes over the P entries; memory is three parameter vectors whatever
    ``num_iters``. Loss of orthogonality only duplicates converged Ritz values
    ("ghosts"); the extreme ones, which is all ``spectral_norm`` needs, stay
    correct (Paige 1976).

    Args:
      fn: scalar function of the pytree ``params``.
      params: pytree w with P entries in all.
      v0: ``(P,)`` start vector in ``ravel_pytree`` order (normalised here).
      num_iters: k, number of steps.

    Returns:
      ``(alpha, beta)``: diagonal ``(k,)`` and off-diagonal ``(k-1,)`` of T_k.
    """
    return _recurrence(fn, params, _split(v0, params), num_iters)


def _tridiagonal_norm(alpha, beta):
    """``max |eig(T)|`` of the Lanczos matrix, cut at the first breakdown.

    ``T`` has diagonal ``alpha (k,)`` and off-diagonal ``beta (k-1,)``. At the
    first ``beta_i <= 1e-12 max|alpha|`` the Krylov space is exhausted: the
    entries after it are zeroed, which leaves the leading block's eigenvalues
    and adds zeros (harmless to a largest absolute value).
    """
    tol = 1e-12 * jnp.maximum(jnp.max(jnp.abs(alpha)), 1e-300)
    alive = jnp.cumprod(beta > tol)                      # beta_i before any breakdown
    beta = beta * alive
    alpha = alpha * jnp.concatenate([jnp.ones((1,), alpha.dtype), alive.astype(alpha.dtype)])
    t = jnp.diag(alpha) + jnp.diag(beta, 1) + jnp.diag(beta, -1)
    return jnp.max(jnp.abs(jnp.linalg.eigvalsh(t)))


def top_abs_eigenvalue(fn, params, key, num_iters: int = 40):
    """``||H||_2 = max_i |lambda_i(H)|`` for the Hessian of ``fn``: traceable.

    The same Lanczos estimate as ``spectral_norm`` (start vector
    ``jax.random.normal(key, (P,))`` over the ravelled parameters, cut at the
    first breakdown) as a jax scalar, so it can be ``jit``-ed and ``vmap``-ed
    over seeds inside a caller's experiment.

    Args:
      fn: scalar function of the pytree ``params``.
      params: pytree w with P entries in all.
      key: PRNG key for the start vector.
      num_iters: Lanczos steps k, ``2 <= k`` (a Python int; capped at P).

    Returns:
      ``()`` array.
    """
    leaves = jax.tree.leaves(params)
    num_iters = min(num_iters, sum(leaf.size for leaf in leaves))
    v0 = jax.random.normal(key, (sum(leaf.size for leaf in leaves),), jnp.result_type(*leaves))
    return _tridiagonal_norm(*_recurrence(fn, params, _split(v0, params), num_iters))


_top_abs_eigenvalue = jax.jit(top_abs_eigenvalue, static_argnums=(0, 3))


def spectral_norm(fn, params, *, key, num_iters: int = 40) -> float:
    """Spectral norm ``||H||_2 = max_i |lambda_i(H)|`` of the Hessian of ``fn``.

    Matrix-free: ``num_iters`` Hessian-vector products in a Lanczos
    recurrence (``lanczos_tridiagonal``) from a random Gaussian start drawn
    with ``key`` (the same ``(P,)`` draw as ``jax.random.normal(key, (P,))``
    over the ravelled parameters); the answer is the largest |eigenvalue| of
    the tridiagonal T_k, stopping at the first breakdown
    ``beta_i <= 1e-12 max|alpha|`` (the Krylov space is exhausted there).
    Lanczos converges to both ends of the spectrum at once, so this is right
    for indefinite Hessians (the Hessian of a network output has eigenvalues
    of both signs). Cost: one compiled program, per step one HVP (a small
    constant times a gradient) plus O(P) vector work.

    Args:
      fn: scalar function ``fn(params)`` (data bound by closure).
      params: pytree w.
      key: PRNG key for the start vector.
      num_iters: Lanczos steps k (>= 2); 30-60 suffice for the top
        eigenvalue to ~1e-8 relative on the networks of this book.

    The Lanczos loop is compiled per ``fn`` object (a static argument): in a
    sweep, build ``fn`` once per shape rather than a fresh lambda per seed, or
    call ``top_abs_eigenvalue`` inside your own ``jax.jit``/``jax.vmap``.

    Returns:
      Python float.
    """
    if not isinstance(num_iters, int) or num_iters < 2:
        raise ValueError(f"num_iters must be an int >= 2, got {num_iters!r}")
    return float(_top_abs_eigenvalue(fn, params, key, num_iters))


def dense_hessian(fn, params):
    """Dense ``(P, P)`` Hessian of ``fn`` over the flattened ``params``.

    For tests and tiny models only. Compiled (one small XLA program is much
    faster than running ``jax.hessian`` op by op).
    """
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda w: fn(unravel(w))))(flat)


class _PointOutput:
    """``fn(params) = apply_fn(params, x[None])[0, 0]``, hashable by value.

    ``spectral_norm`` compiles once per ``fn`` (a static argument of jit); two
    instances with the same ``apply_fn`` and the same probe compare equal, so
    repeated calls (seeds, checkpoints) reuse one compiled Lanczos loop.
    """

    def __init__(self, apply_fn: Callable, x):
        self.apply_fn = apply_fn
        self.x = np.asarray(x).reshape(1, -1)
        self._key = (apply_fn, self.x.shape, self.x.dtype.str, self.x.tobytes())

    def __call__(self, params):
        return self.apply_fn(params, jnp.asarray(self.x))[0, 0]

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _PointOutput) and self._key == other._key


def single_input(x):
    """One input as a ``(d,)`` array, from ``(d,)`` or ``(1, d)``; else ``ValueError``."""
    x = jnp.asarray(x)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise ValueError(f"x must be one input of shape (d,) or (1, d), got shape {x.shape}")
    return x


def output_fn(apply_fn: Callable, x) -> Callable:
    """The scalar function ``w -> f(w; x)`` of the parameters at one input.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      x: ``(d,)`` or ``(1, d)`` input.

    Returns:
      ``fn(params) -> ()``, hashable by value (jit caches hit across calls).
    """
    return _PointOutput(apply_fn, single_input(x))
