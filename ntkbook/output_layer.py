"""A non-linear output layer: why it breaks the transition to linearity.

For a model with a non-linear output ``f(w; x) = phi(f_lin(w; x))``, where
``f_lin`` is a wide network with a *linear* read-out, the chain rule gives
(Liu, Zhu, Belkin 2020, arXiv 2010.01092, Sec. 4)::

    grad f = phi'(f_lin) grad f_lin
    H_f    = phi'(f_lin) H_lin  +  phi''(f_lin) grad f_lin grad f_lin^T
    K_f(x, z) = phi'(f_lin(x)) K_lin(x, z) phi'(f_lin(z))

``||H_lin|| = O(m^-1/2)`` (the transition to linearity of chapter 2), but the
rank-one term has spectral norm exactly ``|phi''(f_lin)| ||grad f_lin||^2``,
which is O(1) because ``||grad f_lin||^2 = K_lin(x, x)`` is O(1) at every
width. The tangent kernel therefore changes by O(1) whenever ``f_lin`` moves
by O(1), which it must do to fit targets through ``phi``.

Functions: ``with_output`` (the model ``phi(f_lin)``), ``hessian_terms``
(the two-term decomposition at one input, traceable: jit and vmap it over
seeds) and ``rank_one_norms`` (the rank-one term at many inputs);
``inverse_activation``, ``predicted_kernel_change`` and
``kernel_change_plateau`` (the O(1) kernel change in closed form).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .hessian import top_abs_eigenvalue
from .models import Model, activation_fn

__all__ = ["with_output", "HessianTerms", "hessian_terms", "rank_one_norms",
           "inverse_activation", "predicted_kernel_change", "kernel_change_plateau"]


def with_output(model: Model, activation: str) -> Model:
    """The model ``f(w; x) = phi(f_lin(w; x))``: ``model`` followed by a scalar non-linearity.

    Same parameters and ``init_fn`` as ``model`` (so both can be trained from
    the same initial weights); ``apply_fn(params, x) -> (n, 1)`` applies
    ``phi = ACTIVATIONS[activation]`` to ``model.apply_fn``. Unlike
    ``mlp(..., output_activation=...)`` it wraps any model, e.g. the
    antisymmetric pair of ``ntkbook.models.antisymmetric``, whose *pre-output*
    ``f_lin`` is then 0 at initialisation.

    Args:
      model: a linear-output ``Model`` (``apply_fn -> (n, 1)``).
      activation: a key of ``ntkbook.models.ACTIVATIONS``.
    """
    phi = activation_fn(activation)
    apply_lin = model.apply_fn

    def apply_fn(params, x):
        return phi(apply_lin(params, x))

    return Model(model.init_fn, apply_fn, dict(model.config, output_layer=activation))


class HessianTerms(NamedTuple):
    """Spectral norms of the Hessian of ``f = phi(f_lin)`` and of its two terms.

    Attributes (jax scalars, or arrays with leading batch axes under ``vmap``):
      full: ``||H_f||_2`` (Lanczos on Hessian-vector products of f).
      linear_term: ``|phi'(f_lin)| ||H_lin||_2`` (Lanczos on f_lin).
      rank_one_term: ``|phi''(f_lin)| ||grad f_lin||^2`` (exact, closed form).
      hessian_lin: ``||H_lin||_2``, the Hessian norm of the linear-output
        network itself (chapter 2's quantity).
      f_lin: value of the linear-output network at the input.
      grad_sq_norm: ``||grad_w f_lin||^2 = K_lin(x, x)``.
    """

    full: jnp.ndarray
    linear_term: jnp.ndarray
    rank_one_term: jnp.ndarray
    hessian_lin: jnp.ndarray
    f_lin: jnp.ndarray
    grad_sq_norm: jnp.ndarray


def _grad_sq_norm(grad):
    return sum(jnp.vdot(leaf, leaf) for leaf in jax.tree.leaves(grad))


def hessian_terms(fn_lin: Callable, phi: Callable, params, *, key,
                  num_iters: int = 40) -> HessianTerms:
    """Two-term decomposition of the Hessian of ``f = phi(f_lin)`` at one input.

    ``H_f = phi'(f_lin) H_lin + phi''(f_lin) g g^T`` with ``g = grad_w f_lin``
    (chain rule; Liu, Zhu, Belkin 2020, arXiv 2010.01092, Sec. 4). ``||H_f||``
    and ``||H_lin||`` come from ``ntkbook.hessian.top_abs_eigenvalue``
    (Lanczos on Hessian-vector products, never forming H, both from the same
    start vector); the rank-one term's norm is exactly ``|phi''(f_lin)| ||g||^2``.
    Triangle inequality: ``| ||A|| - ||B|| | <= ||H_f|| <= ||A|| + ||B||``.

    Traceable: call it inside ``jax.jit`` and ``jax.vmap`` it over seeds.

    Args:
      fn_lin: scalar ``fn_lin(params)``: the network with a linear read-out
        at one input x, e.g. ``ntkbook.hessian.output_fn(apply_fn, x)``.
      phi: scalar output non-linearity (jax-differentiable callable).
      params: pytree w.
      key: PRNG key for the Lanczos start vector.
      num_iters: Lanczos steps (a Python int).

    Returns:
      ``HessianTerms`` of jax scalars.
    """
    if not callable(fn_lin) or not callable(phi):
        raise ValueError("fn_lin and phi must be callables, got "
                         f"{type(fn_lin).__name__}, {type(phi).__name__}")
    shape = jax.eval_shape(fn_lin, params).shape
    if shape != ():
        raise ValueError(f"fn_lin must return a scalar, got shape {shape}")
    z, g = jax.value_and_grad(fn_lin)(params)
    grad_sq = _grad_sq_norm(g)
    d1 = jax.grad(phi)(z)
    d2 = jax.grad(jax.grad(phi))(z)
    norm_lin = top_abs_eigenvalue(fn_lin, params, key, num_iters)
    norm_full = top_abs_eigenvalue(lambda p: phi(fn_lin(p)), params, key, num_iters)
    return HessianTerms(full=norm_full, linear_term=jnp.abs(d1) * norm_lin,
                        rank_one_term=jnp.abs(d2) * grad_sq, hessian_lin=norm_lin,
                        f_lin=z, grad_sq_norm=grad_sq)


def rank_one_norms(apply_fn_lin: Callable, phi: Callable, params, x):
    """``|phi''(f_lin(x_i))| ||grad_w f_lin(x_i)||^2`` for every input: the rank-one term.

    The exact spectral norm of the rank-one part of the Hessian of
    ``f = phi(f_lin)`` at each input (see ``hessian_terms``), without Lanczos.

    Args:
      apply_fn_lin: ``apply_fn_lin(params, x: (n, d)) -> (n, 1)``.
      phi: scalar output non-linearity.
      params: pytree w.
      x: ``(n, d)`` inputs.

    Returns:
      ``(n,)`` array.
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d), got {x.shape}")

    def one(xi):
        z, g = jax.value_and_grad(lambda p: apply_fn_lin(p, xi[None])[0, 0])(params)
        return jnp.abs(jax.grad(jax.grad(phi))(z)) * _grad_sq_norm(g)

    return jax.lax.map(one, x)


_INVERSES = {
    "identity": lambda y: y,
    "sigmoid": lambda y: jnp.log(y) - jnp.log1p(-y),
    "tanh": jnp.arctanh,
    "softplus": lambda y: jnp.log(jnp.expm1(y)),
}
_RANGES = {"identity": (-np.inf, np.inf), "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0),
           "softplus": (0.0, np.inf)}


def inverse_activation(name: str, y):
    """``phi^{-1}(y)`` for an output activation ``name`` (identity, sigmoid, tanh, softplus).

    Raises a ValueError when y is outside the open range of phi (e.g. a
    sigmoid target 0 or 1 would need ``f_lin = -inf / +inf``).
    """
    if name not in _INVERSES:
        raise ValueError(f"name must be one of {sorted(_INVERSES)}, got {name!r}")
    lo, hi = _RANGES[name]
    y = jnp.asarray(y)
    if not bool(jnp.all((y > lo) & (y < hi))):
        raise ValueError(f"y must lie in the open range ({lo}, {hi}) of {name}")
    return _INVERSES[name](y)


def predicted_kernel_change(ntk_lin, dphi_init, dphi_final):
    """Kernel change of ``f = phi(f_lin)`` when only the output layer moves.

    If ``K_lin`` stays constant (a wide linear-output network, chapter 2) the
    kernel of f is ``K = D K_lin D`` with ``D = diag(phi'(f_lin(x_i)))``, so

        ||K_T - K_0||_F / ||K_0||_F = ||D_T K D_T - D_0 K D_0||_F / ||D_0 K D_0||_F.

    Args:
      ntk_lin: ``(n, n)`` tangent kernel of f_lin.
      dphi_init: ``(n,)`` ``phi'(f_lin(w_0; x_i))``.
      dphi_final: ``(n,)`` ``phi'(f_lin(w_T; x_i))``, e.g. at ``phi^{-1}(y_i)``
        after interpolating the targets y.

    Returns:
      Scalar relative Frobenius change.
    """
    ntk_lin = jnp.asarray(ntk_lin)
    n = ntk_lin.shape[0]
    if ntk_lin.shape != (n, n):
        raise ValueError(f"ntk_lin must be square (n, n), got {ntk_lin.shape}")
    d0 = jnp.broadcast_to(jnp.asarray(dphi_init), (n,))
    d1 = jnp.broadcast_to(jnp.asarray(dphi_final), (n,))
    k0 = d0[:, None] * ntk_lin * d0[None, :]
    k1 = d1[:, None] * ntk_lin * d1[None, :]
    return jnp.linalg.norm(k1 - k0) / jnp.linalg.norm(k0)


def kernel_change_plateau(name: str, target: float, f_lin_init: float = 0.0) -> float:
    """Closed form ``1 - (phi'(phi^{-1}(y)) / phi'(f0))^2`` for targets with equal ``phi'``.

    When ``phi'(phi^{-1}(y_i))`` is the same for every target (e.g. sigmoid
    with targets 0.2 and 0.8: ``phi' = y (1 - y) = 0.16`` at both) and
    ``f_lin(w_0) = f0`` everywhere, ``D_T = c_T I`` and ``D_0 = c_0 I`` in
    ``predicted_kernel_change`` and the change is ``|1 - (c_T/c_0)^2|``
    whatever ``K_lin``: for sigmoid, y = 0.8, f0 = 0: ``1 - 0.64^2 = 0.5904``.

    Args:
      name: output activation (see ``inverse_activation``).
      target: one target value y.
      f_lin_init: f0, the linear-output network's value at init.
    """
    phi = activation_fn(name)
    dphi = jax.grad(phi)
    c_final = dphi(inverse_activation(name, float(target)))
    c_init = dphi(jnp.asarray(float(f_lin_init)))
    return float(jnp.abs(1.0 - (c_final / c_init) ** 2))
