"""The empirical (finite-width) neural tangent kernel and kernel gradient descent.

The tangent kernel of a scalar model f(w; x) is
``K(x, x') = <grad_w f(w; x), grad_w f(w; x')>`` (Jacot, Gabriel, Hongler
2018, arXiv 1806.07572, eq. 6). ``empirical_ntk`` computes it at finite
width from jax derivatives (``ntkbook.structured``); its width -> infinity
limit is in ``ntkbook.infinite``.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from . import structured

__all__ = ["empirical_ntk", "jacobian_matrix", "linearized_gd_mse", "kernel_change"]


# Per-example Jacobians of the parameters that are not dense-layer weights are
# stored whole when they fit in this many bytes (both inputs together);
# beyond it they are streamed in blocks of x2 of at most this size.
JACOBIAN_BYTES = 2**28


def _tapped_block(h1, d1, h2, d2):
    """``sum_{s,t} (H1 H2^T)[., ., s, t] (D1 D2^T)[., ., s, t]`` for one weight."""
    if h1.shape[1] == 1:
        return (h1[:, 0] @ h2[:, 0].T) * (d1[:, 0] @ d2[:, 0].T)
    return jnp.einsum("isa,jta,isb,jtb->ij", h1, h2, d1, d2)


def _rest_columns(plan, leaves, x1, x2, chunk):
    """``J1 J2^T`` of the rest leaves by NTK-vector products, ``chunk`` columns at a time.

    Column j is ``J1 (J2^T e_j)``: a per-example gradient at ``x2_j`` then a JVP
    over ``x1``; memory ``chunk x`` the size of the rest leaves.
    """
    fn = structured.rest_output(plan, leaves)
    rest = [leaves[i] for i in plan.rest]
    n2 = x2.shape[0]
    num_chunks = -(-n2 // chunk)
    padded = jnp.concatenate([x2, jnp.repeat(x2[-1:], num_chunks * chunk - n2, axis=0)])

    def block(xs):
        grads = jax.vmap(jax.grad(fn), (None, 0))(rest, xs)

        def column(tangent):
            return jax.vmap(lambda xi: jax.jvp(lambda r: fn(r, xi), (rest,), (tangent,))[1])(x1)

        return jax.vmap(column)(grads)                              # (chunk, n1)

    cols = jax.lax.map(block, padded.reshape(num_chunks, chunk, -1))
    return cols.reshape(num_chunks * chunk, -1)[:n2].T


@partial(jax.jit, static_argnums=0)
def _ntk(apply_fn, params, x1, x2):
    leaves, treedef = jax.tree.flatten(params)
    plan = structured.factorise(apply_fn, leaves, treedef, x1[0])
    rest_bytes = sum(leaves[i].size * leaves[i].dtype.itemsize for i in plan.rest)
    n2 = x1.shape[0] if x2 is None else x2.shape[0]
    stored = (x1.shape[0] + n2) * rest_bytes <= JACOBIAN_BYTES
    f1 = structured.per_example_factors(plan, leaves, x1, with_rest=stored)
    f2 = f1 if x2 is None else structured.per_example_factors(plan, leaves, x2,
                                                              with_rest=stored)
    dtype = jnp.result_type(*leaves, x1)
    ntk = jnp.zeros((x1.shape[0], n2), dtype)
    for k in plan.taps:
        ntk = ntk + _tapped_block(f1[0][k], f1[1][k], f2[0][k], f2[1][k])
    if stored:
        for j1, j2 in zip(f1[2], f2[2]):
            ntk = ntk + j1.reshape(j1.shape[0], -1) @ j2.reshape(j2.shape[0], -1).T
    elif plan.rest:
        chunk = max(1, min(n2, JACOBIAN_BYTES // max(rest_bytes, 1)))
        ntk = ntk + _rest_columns(plan, leaves, x1, x1 if x2 is None else x2, chunk)
    return ntk


def empirical_ntk(apply_fn, params, x1, x2=None):
    """Empirical tangent kernel ``K[i, j] = <df(x1_i)/dw, df(x2_j)/dw>``.

    ``K = J1 J2^T`` with ``J[i, p] = df(w; x_i)/dw_p`` (Jacot, Gabriel, Hongler
    2018, arXiv 1806.07572, eq. 6), never forming the Jacobians of the weight
    matrices. Algorithm (``ntkbook.structured``): a weight W that enters only
    through one product ``z = h W`` has ``df/dW = h^T delta`` per example
    (``delta = df/dz``), so its share is ``<h, h'> <delta, delta'>``; one
    vmapped forward + backward pass gives every h and delta ("structured
    derivatives", Novak, Sohl-Dickstein, Schoenholz 2022, arXiv 2206.08720).
    The other parameters (biases, shared or gated weights) are contracted as
    stored per-example Jacobians when ``(n1 + n2) x`` their size fits in
    ``JACOBIAN_BYTES``, else by NTK-vector products in blocks of x2 that fit.

    Cost and memory: for an MLP of width m, depth L on n = n1 + n2 inputs,
    O(n L m^2) flops (two passes) plus O(n1 n2 L m) for the Gram products,
    and O(n L m + n1 n2) memory -- independent of #params = O(L m^2); in
    general at most ``JACOBIAN_BYTES`` + O(n x activations) more.
    Accuracy: the same sums in another order, so the float rounding of a
    dense ``J1 @ J2.T`` (relative ~1e-7 in float32, ~1e-16 in float64).

    Assumes ``apply_fn`` treats the rows of x independently (no batch
    statistics), as the NTK of a row-wise model does.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params: pytree of parameters w.
      x1: ``(n1, d)`` inputs.
      x2: ``(n2, d)`` inputs; ``x1`` when None.

    Returns:
      ``(n1, n2)`` kernel matrix (compiled once per ``apply_fn`` and shapes).
    """
    if x2 is not None and (x2.ndim != 2 or x1.ndim != 2 or x1.shape[1] != x2.shape[1]):
        raise ValueError(
            f"x1 and x2 must be (n, d) arrays with the same d, got {x1.shape}, {x2.shape}"
        )
    if x1.ndim != 2 or x1.shape[0] == 0:
        raise ValueError(f"x1 must be an (n, d) array with n >= 1, got shape {x1.shape}")
    return _ntk(apply_fn, params, x1, x2)


@partial(jax.jit, static_argnums=0)
def jacobian_matrix(apply_fn, params, x):
    """Dense Jacobian ``J[i, p] = df(x_i)/dw_p`` of shape ``(n, #params)``.

    For checks and small models only (it stores n x #params numbers).
    Compiled: one small program instead of op-by-op dispatch.
    """
    flat, unravel = ravel_pytree(params)
    return jax.jacobian(lambda w: apply_fn(unravel(w), x)[:, 0])(flat)


@partial(jax.jit, static_argnames=("num_steps", "record_every"))
def _kernel_gd(ntk_train, ntk_test_train, residual, f0_test, step_size, num_steps, record_every):
    def step(carry, _):
        r, c = carry
        return (r - step_size * (ntk_train @ r), c + step_size * r), 0.5 * jnp.mean(r**2)

    def chunk(carry, _):
        carry, losses = jax.lax.scan(step, carry, None, length=record_every)
        return carry, (losses, f0_test - ntk_test_train @ carry[1])

    (r, _), (losses, history) = jax.lax.scan(chunk, (residual, jnp.zeros_like(residual)),
                                             None, length=num_steps // record_every)
    losses = jnp.concatenate([losses.reshape(-1), 0.5 * jnp.mean(r**2)[None]])
    return losses, jnp.concatenate([f0_test[None], history])


def linearized_gd_mse(ntk_train, ntk_test_train, f0_train, f0_test, y_train, *,
                      learning_rate, num_steps: int, record_every: int = 1):
    """Gradient descent on the MSE of the linearised model, run in function space.

    The linearised model ``f_lin(w; x) = f(w0; x) + J(x) (w - w0)`` trained by
    ``w_{t+1} = w_t - lr grad L(w_t)`` on ``L = (1/2n) sum_i (f_lin(w; x_i) - y_i)^2``
    (``ntkbook.mse_loss``) moves its outputs by
    ``f_{t+1}(x) = f_t(x) - (lr/n) K(x, X) r_t`` with ``r_t = f_t(X) - y`` and
    ``K = J J^T`` the empirical NTK at w0, so (Lee et al. 2019, arXiv
    1902.06720, eq. 8-9, in discrete time)

        r_{t+1} = (I - lr K(X, X) / n) r_t,
        f_t(x*) = f(w0; x*) - K(x*, X) c_t,   c_{t+1} = c_t + (lr/n) r_t.

    Exactly the trajectory of ``gradient_descent`` on ``nt.linearize(apply_fn,
    w0)`` (same iterates; only float rounding differs, ~1e-12 relative in
    float64), at O(n^2) per step instead of a JVP and a VJP through the
    network: n = number of training points.

    Args:
      ntk_train: ``(n, n)`` K(X, X) at w0.
      ntk_test_train: ``(n_test, n)`` K(x*, X) at w0.
      f0_train, f0_test: ``(n,)``/``(n, 1)`` and ``(n_test,)``/``(n_test, 1)``
        outputs of the network at w0.
      y_train: ``(n,)`` or ``(n, 1)`` targets.
      learning_rate: lr.
      num_steps: T, a multiple of ``record_every``.
      record_every: record the test outputs every this many steps.

    Returns:
      ``ntkbook.training.TrainResult`` with ``params=None``, ``losses``
      ``(T + 1,)`` (the training loss before each step and after the last)
      and ``metrics`` ``(T // record_every + 1, n_test)``: f_t(x*) at steps
      0, r, 2r, ..., T -- as ``gradient_descent`` with
      ``metrics_fn=lambda p: apply_lin(p, x_test)[:, 0]``.
    """
    from .training import TrainResult

    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if not isinstance(record_every, int) or record_every < 1 or num_steps % record_every:
        raise ValueError(f"record_every must be a positive int dividing num_steps={num_steps}, "
                         f"got {record_every!r}")
    n = ntk_train.shape[0]
    f0_train, f0_test, y_train = (jnp.reshape(a, (-1,)) for a in (f0_train, f0_test, y_train))
    if ntk_train.shape != (n, n) or ntk_test_train.shape != (f0_test.shape[0], n) \
            or f0_train.shape != (n,) or y_train.shape != (n,):
        raise ValueError(f"shapes do not fit: ntk_train {ntk_train.shape}, ntk_test_train "
                         f"{ntk_test_train.shape}, f0_train {f0_train.shape}, f0_test "
                         f"{f0_test.shape}, y_train {y_train.shape}")
    dtype = ntk_train.dtype
    losses, metrics = _kernel_gd(ntk_train, ntk_test_train.astype(dtype),
                                 (f0_train - y_train).astype(dtype), f0_test.astype(dtype),
                                 jnp.asarray(learning_rate / n, dtype), num_steps, record_every)
    return TrainResult(None, losses, metrics)


def kernel_change(ntk_a, ntk_b):
    """Relative Frobenius change ``||K_b - K_a||_F / ||K_a||_F`` (a scalar)."""
    return jnp.linalg.norm(ntk_b - ntk_a) / jnp.linalg.norm(ntk_a)
