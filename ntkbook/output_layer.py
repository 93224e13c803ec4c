"""A non-linear output layer: why it breaks the transition to linearity.

For a model with a non-linear output ``f(w; x) = phi(f_lin(w; x))``, where
``f_lin`` is a wide network with a *linear* read-out (``ntkbook.models.mlp``
with ``output_activation=None``), the chain rule gives (Liu, Zhu, Belkin 2020,
arXiv 2010.01092, Sec. 4)::

    grad f = phi'(f_lin) grad f_lin
    H_f    = phi'(f_lin) H_lin  +  phi''(f_lin) grad f_lin grad f_lin^T
    K_f(x, z) = phi'(f_lin(x)) K_lin(x, z) phi'(f_lin(z))

``||H_lin|| = O(m^-1/2)`` (the transition to linearity of chapter 2), but the
rank-one term has spectral norm exactly ``|phi''(f_lin)| ||grad f_lin||^2``,
which is O(1) because ``||grad f_lin||^2 = K_lin(x, x)`` is O(1) at every
width. The tangent kernel therefore changes by O(1) whenever ``f_lin`` moves
by O(1), which it must do to fit targets through ``phi``. Optimisation does
not need linearity, only a lower bound on ``lambda_min(K)`` along the path
(the PL* condition of Liu, Zhu, Belkin 2022, arXiv 2003.00307), and the
kernel identity above shows ``lambda_min(K_f) >= min phi'^2 lambda_min(K_lin)``.

Functions: ``hessian_terms`` (matrix-free two-term decomposition at one
input, via ``ntkbook.hessian.output_fn``) and ``rank_one_norms`` (the rank-one term at
many inputs); ``antisymmetric_init`` (so ``f_lin(w0) = 0`` at every width);
``inverse_activation``, ``predicted_kernel_change``, ``kernel_change_plateau``
(the O(1) kernel change in closed form); ``tangent_kernel_metrics`` and
``pl_constant`` (smallest eigenvalue of K and the PL* constant along
training); ``gd_from_antisymmetric_init`` (the chapter's training run,
vmapped over seeds); ``bottleneck_mlp`` (a wide network with a fixed-width
layer inside).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .hessian import output_fn, spectral_norm
from .models import Model, activation_fn
from .ntk import empirical_ntk
from .training import TrainResult, mse_loss, train

__all__ = ["HessianTerms", "hessian_terms", "rank_one_norms",
           "antisymmetric_init", "inverse_activation", "predicted_kernel_change", "kernel_change_plateau", "tangent_kernel_metrics",
           "pl_constant", "gd_from_antisymmetric_init", "bottleneck_mlp"]


class HessianTerms(NamedTuple):
    """Spectral norms of the Hessian of ``f = phi(f_lin)`` and of its two terms.

    Attributes:
      full: ``||H_f||_2`` (Lanczos on Hessian-vector products of f).
      linear_term: ``|phi'(f_lin)| ||H_lin||_2`` (Lanczos on f_lin).
      rank_one_term: ``|phi''(f_lin)| ||grad f_lin||^2`` (exact, closed form).
      hessian_lin: ``||H_lin||_2``, the Hessian norm of the linear-output
        network itself (chapter 2's quantity).
      f_lin: value of the linear-output network at the input.
      grad_sq_norm: ``||grad_w f_lin||^2 = K_lin(x, x)``.
    """

    full: float
    linear_term: float
    rank_one_term: float
    hessian_lin: float
    f_lin: float
    grad_sq_norm: float


class _Composed(NamedTuple):
    """``outer(inner(params))`` as a value: equal pairs hash equal, so jax's
    compile cache (keyed on the static function argument) is reused across calls."""

    outer: Callable
    inner: Callable

    def __call__(self, params):
        return self.outer(self.inner(params))


def hessian_terms(fn_lin: Callable, phi: Callable, params, *, key,
                  num_iters: int = 40) -> HessianTerms:
    """Two-term decomposition of the Hessian of ``f = phi(f_lin)`` at one input.

    ``H_f = phi'(f_lin) H_lin + phi''(f_lin) g g^T`` with ``g = grad_w f_lin``
    (chain rule; Liu, Zhu, Belkin 2020, arXiv 2010.01092, Sec. 4). The first
    term's norm ``|phi'| ||H_lin||`` and ``||H_f||`` come from
    ``ntkbook.hessian.spectral_norm`` (Lanczos on Hessian-vector products,
    never forming H); the rank-one term's norm is exactly
    ``|phi''(f_lin)| ||g||^2``. Triangle inequality:
    ``| ||A|| - ||B|| | <= ||H_f|| <= ||A|| + ||B||``.

    Args:
      fn_lin: scalar ``fn_lin(params)``: the network with a linear read-out
        at one input x (bound by closure), e.g.
        ``lambda p: apply_fn(p, x[None])[0, 0]``. Pass the same object (and
        the same ``phi``) across calls to reuse the compiled Lanczos loops.
      phi: scalar output non-linearity (jax-differentiable callable).
      params: pytree w.
      key: PRNG key for the Lanczos start vector.
      num_iters: Lanczos steps.

    Returns:
      ``HessianTerms`` of Python floats.
    """
    if not callable(fn_lin) or not callable(phi):
        raise ValueError("fn_lin and phi must be callables, got "
                         f"{type(fn_lin).__name__}, {type(phi).__name__}")
    shape = jax.eval_shape(fn_lin, params).shape
    if shape != ():
        raise ValueError(f"fn_lin must return a scalar, got shape {shape}")
    z, g = jax.value_and_grad(fn_lin)(params)
    grad_sq = sum(jnp.vdot(leaf, leaf) for leaf in jax.tree.leaves(g))
    d1 = jax.grad(phi)(z)
    d2 = jax.grad(jax.grad(phi))(z)
    norm_lin = spectral_norm(fn_lin, params, key=key, num_iters=num_iters)
    norm_full = spectral_norm(_Composed(phi, fn_lin), params, key=key, num_iters=num_iters)
    return HessianTerms(full=norm_full, linear_term=float(jnp.abs(d1)) * norm_lin,
                        rank_one_term=float(jnp.abs(d2) * grad_sq), hessian_lin=norm_lin,
                        f_lin=float(z),
                        grad_sq_norm=float(grad_sq))


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
        grad_sq = sum(jnp.vdot(leaf, leaf) for leaf in jax.tree.leaves(g))
        return jnp.abs(jax.grad(jax.grad(phi))(z)) * grad_sq

    return jax.lax.map(one, x)


def antisymmetric_init(params):
    """Pair up the last hidden layer so that the network output is 0 at init.

    For ``ntkbook.models.mlp`` parameters (any depth, with or without biases)
    of even width m: the last hidden layer's second half of units copies the
    first half (``W_L[:, m/2:] = W_L[:, :m/2]``, same for its bias) and the
    read-out weights are antisymmetric (``v[m/2:] = -v[:m/2]``, read-out bias
    0). Then ``h_L[j + m/2] = h_L[j]`` and ``f_lin(w0; x) = 0`` for every x,
    while each weight is still N(0, 1) (the "doubling trick", e.g. Chizat,
    Oyallon, Bach 2019, arXiv 1812.07956, Sec. 2.3). The tangent kernel at
    init keeps its infinite-width limit. Returns a new pytree.

    Args:
      params: list of ``{"W": (n_in, n_out), "b": (n_out,)?}`` layers, the
        last one the ``(m, 1)`` read-out.

    Returns:
      Pytree like ``params``.
    """
    if not isinstance(params, (list, tuple)) or len(params) < 2:
        raise ValueError("params must be an ntkbook.models.mlp parameter list "
                         f"with >= 2 layers, got {type(params).__name__}")
    m = params[-1]["W"].shape[0]
    if m % 2:
        raise ValueError(f"params must have an even last hidden width, got {m}")
    half = m // 2
    hidden = dict(params[-2])
    hidden["W"] = jnp.concatenate([hidden["W"][:, :half]] * 2, axis=1)
    if "b" in hidden:
        hidden["b"] = jnp.concatenate([hidden["b"][:half]] * 2)
    out = dict(params[-1])
    out["W"] = jnp.concatenate([out["W"][:half], -out["W"][:half]], axis=0)
    if "b" in out:
        out["b"] = jnp.zeros_like(out["b"])
    return list(params[:-2]) + [hidden, out]


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


def tangent_kernel_metrics(apply_fn: Callable, loss_fn: Callable, x) -> Callable:
    """``metrics_fn(params) -> {"ntk": (n, n), "grad_sq_norm": ()}`` for ``nk.train``.

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


def gd_from_antisymmetric_init(model: Model, x, y, init_keys, *, num_steps: int,
                               record_every: int) -> tuple[TrainResult, jnp.ndarray]:
    """Full-batch GD on the mean square loss from ``antisymmetric_init``, one run per key.

    For each key: ``w0 = antisymmetric_init(model.init_fn(key))`` (so
    ``f_lin(w0) = 0``), step ``eta = n / lambda_max(K(w0))`` (i.e. ``1 /
    lambda_max`` of the Gauss-Newton matrix ``J^T J / n`` of
    ``L = ||F - y||^2 / (2n)``: the top kernel mode is fitted in one step),
    then ``num_steps`` steps of ``ntkbook.training.train`` with
    ``optax.sgd(eta)``, recording ``tangent_kernel_metrics`` every
    ``record_every`` steps. The runs are ``jax.vmap``-ed over the keys: one
    compilation for all seeds.

    Args:
      model: an ``ntkbook.models.mlp`` (even width).
      x: ``(n, d)`` inputs; y: ``(n, 1)`` targets.
      init_keys: ``(s, 2)`` PRNG keys, one per run.
      num_steps, record_every: as in ``ntkbook.training.train``.

    Returns:
      ``(result, learning_rates)``: a ``TrainResult`` whose leaves have a
      leading seed axis s (``losses (s, T+1)``, ``metrics["ntk"] (s, R+1, n, n)``,
      ``metrics["grad_sq_norm"] (s, R+1)``) and the ``(s,)`` step sizes.
    """
    import optax

    init_keys = jnp.asarray(init_keys)
    if init_keys.ndim != 2:
        raise ValueError(f"init_keys must be a (s, 2) stack of PRNG keys, got {init_keys.shape}")
    loss_fn = mse_loss(model.apply_fn, x, y)
    metrics_fn = tangent_kernel_metrics(model.apply_fn, loss_fn, x)
    n = x.shape[0]

    def run(key):
        params = antisymmetric_init(model.init_fn(key))
        lr = n / jnp.linalg.eigvalsh(empirical_ntk(model.apply_fn, params, x))[-1]
        result = train(loss_fn, params, optax.sgd(lr), num_steps=num_steps,
                       metrics_fn=metrics_fn, record_every=record_every)
        return result, lr

    return jax.vmap(run)(init_keys)


def bottleneck_mlp(in_dim: int, width: int, bottleneck: int, *,
                   activation: str = "tanh", bottleneck_activation: str | None = None) -> Model:
    """Wide network with one fixed-width non-linear layer in the middle.

    ``h1 = phi(W1 x / sqrt(d))`` (width m), ``s = psi(B h1 / sqrt(m))`` (width
    ``bottleneck``, fixed), ``h2 = phi(W2 s / sqrt(bottleneck))`` (width m),
    ``f = v . h2 / sqrt(m)``: NTK parameterisation, all weights N(0, 1).
    ``||H_f||`` does not shrink with m (Liu, Zhu, Belkin 2020,
    arXiv 2010.01092, Sec. 4, bottleneck networks): each bottleneck unit is
    ``psi`` of a wide linear-output network (an O(1) rank-one term when psi
    is non-linear), and the upper part is a non-linear function of only
    ``bottleneck`` numbers, whose second derivative in them is O(1) because
    their fan-in scaling is ``1/sqrt(bottleneck)``, not ``1/sqrt(m)``.

    Args:
      in_dim, width, bottleneck: d, m and the fixed width b.
      activation: phi, the wide layers' non-linearity.
      bottleneck_activation: psi; ``activation`` when None.

    Returns:
      ``Model`` with ``params = [{"W": (d, m)}, {"W": (m, b)}, {"W": (b, m)}, {"W": (m, 1)}]``.
    """
    for name, value in (("in_dim", in_dim), ("width", width), ("bottleneck", bottleneck)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    phi = activation_fn(activation)
    psi = activation_fn(bottleneck_activation or activation)
    sizes = [in_dim, width, bottleneck, width, 1]

    def init_fn(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [{"W": jax.random.normal(k, (a, b))}
                for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

    def dense(layer, h):
        return h @ layer["W"] / jnp.sqrt(h.shape[-1])

    def apply_fn(params, x):
        h = phi(dense(params[0], x))
        h = phi(dense(params[2], psi(dense(params[1], h))))
        return dense(params[3], h)

    config = dict(kind="bottleneck_mlp", in_dim=in_dim, width=width, bottleneck=bottleneck,
                  activation=activation, bottleneck_activation=bottleneck_activation)
    return Model(init_fn, apply_fn, config)


# The output at one input as a function of the weights; kept under the name
# chapter 3 uses. One implementation, in ``ntkbook.hessian``.
scalar_output_fn = output_fn
