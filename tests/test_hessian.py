"""ntkbook.hessian: HVPs vs finite differences and dense Hessians; Lanczos norm.

Tolerances (float64): HVP vs dense H v, 1e-10 (same products, other order);
Lanczos coefficients vs the dense recurrence, 1e-10 ||H|| (a few steps of
rounding, amplified by at most the condition of the Krylov basis); the top
Ritz value after 60 steps on a 100-parameter problem, 1e-8 (converged).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import ntkbook as nk


@pytest.fixture
def problem():
    model = nk.mlp(3, 6, 2, activation="tanh", output_activation="softplus", b_std=0.2)
    params = model.init_fn(jax.random.PRNGKey(0))
    x = nk.data.sphere(4, 3, key=jax.random.PRNGKey(1))

    def fn(p):
        return jnp.sum(model.apply_fn(p, x))

    return fn, params


def test_hvp_matches_dense_hessian(problem):
    fn, params = problem
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(2), flat.shape)
    dense = nk.hessian.dense_hessian(fn, params)
    np.testing.assert_allclose(ravel_pytree(nk.hvp(fn, params, unravel(v)))[0], dense @ v,
                               rtol=1e-10, atol=1e-12)


def test_hvp_matches_central_differences_of_gradient(problem):
    fn, params = problem
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(3), flat.shape)
    grad = lambda w: ravel_pytree(jax.grad(fn)(unravel(w)))[0]
    eps = 1e-5
    fd = (grad(flat + eps * v) - grad(flat - eps * v)) / (2 * eps)
    # central differences: error O(eps^2 |third derivative|) ~ 1e-9
    np.testing.assert_allclose(ravel_pytree(nk.hvp(fn, params, unravel(v)))[0], fd,
                               rtol=1e-6, atol=1e-8)


def test_spectral_norm_matches_dense_eigenvalues(problem):
    fn, params = problem
    dense = nk.hessian.dense_hessian(fn, params)
    expected = np.abs(np.linalg.eigvalsh(np.asarray(dense))).max()
    got = nk.spectral_norm(fn, params, key=jax.random.PRNGKey(4), num_iters=60)
    assert got == pytest.approx(expected, rel=1e-8)


def _dense_lanczos(hessian, v0, num_iters):
    """The textbook recurrence in numpy on a dense matrix (the reference)."""
    v_prev, v, b_prev = np.zeros_like(v0), v0 / np.linalg.norm(v0), 0.0
    alpha, beta = [], []
    for _ in range(num_iters):
        w = hessian @ v - b_prev * v_prev
        a = w @ v
        w = w - a * v
        b_prev, v_prev, v = np.linalg.norm(w), v, w / np.linalg.norm(w)
        alpha.append(a)
        beta.append(b_prev)
    return np.array(alpha), np.array(beta[:-1])


def test_lanczos_coefficients_match_dense_recurrence(problem):
    # Same start vector, same recurrence on the dense Hessian: the pytree
    # recurrence on HVPs gives the same T_k. 12 steps, before orthogonality
    # is lost, so rounding differences stay ~1e-13 of ||H||.
    fn, params = problem
    flat, _ = ravel_pytree(params)
    dense = np.asarray(nk.hessian.dense_hessian(fn, params))
    v0 = jax.random.normal(jax.random.PRNGKey(5), flat.shape)
    alpha, beta = nk.hessian.lanczos_tridiagonal(fn, params, v0, 12)
    ref_alpha, ref_beta = _dense_lanczos(dense, np.asarray(v0), 12)
    scale = np.abs(np.linalg.eigvalsh(dense)).max()
    np.testing.assert_allclose(alpha, ref_alpha, atol=1e-10 * scale)
    np.testing.assert_allclose(beta, ref_beta, atol=1e-10 * scale)


def test_lanczos_ritz_values_match_dense_recurrence(problem):
    # The eigenvalues of T_k (what spectral_norm reads) from the compiled
    # scan equal those of the textbook recurrence to 1e-10 of ||H|| in
    # float64, for an even and an odd number of steps.
    fn, params = problem
    flat, _ = ravel_pytree(params)
    dense = np.asarray(nk.hessian.dense_hessian(fn, params))
    scale = np.abs(np.linalg.eigvalsh(dense)).max()
    v0 = jax.random.normal(jax.random.PRNGKey(7), flat.shape)
    ritz = lambda a, b: np.linalg.eigvalsh(np.diag(a) + np.diag(b, 1) + np.diag(b, -1))
    for k in (11, 12):
        got = ritz(*map(np.asarray, nk.hessian.lanczos_tridiagonal(fn, params, v0, k)))
        expected = ritz(*_dense_lanczos(dense, np.asarray(v0), k))
        np.testing.assert_allclose(got, expected, atol=1e-10 * scale)


def test_spectral_norm_start_vector_is_the_flat_draw(problem):
    # spectral_norm(key) == Lanczos from jax.random.normal(key, (P,)) over the
    # ravelled parameters: the answer does not depend on how the pytree is split.
    fn, params = problem
    flat, _ = ravel_pytree(params)
    key = jax.random.PRNGKey(6)
    alpha, beta = nk.hessian.lanczos_tridiagonal(fn, params, jax.random.normal(key, flat.shape), 20)
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    expected = np.abs(np.linalg.eigvalsh(t)).max()
    assert nk.spectral_norm(fn, params, key=key, num_iters=20) == pytest.approx(expected, rel=1e-12)


def test_spectral_norm_of_quadratic_form():
    # fn(w) = 1/2 w^T A w has Hessian A; indefinite A with |min| > max.
    diag = jnp.array([3.0, -5.0, 1.0, 0.5])
    fn = lambda w: 0.5 * jnp.sum(diag * w["a"] ** 2)
    got = nk.spectral_norm(fn, {"a": jnp.ones(4)}, key=jax.random.PRNGKey(0), num_iters=10)
    assert got == pytest.approx(5.0, rel=1e-10)


def test_spectral_norm_validates_num_iters(problem):
    fn, params = problem
    with pytest.raises(ValueError, match="num_iters"):
        nk.spectral_norm(fn, params, key=jax.random.PRNGKey(0), num_iters=1)


def test_loss_hessian_is_gauss_newton_plus_residual_term():
    """d^2 L = J^T J / n + (1/n) sum_i r_i d^2 f_i for L = (1/2n) sum_i r_i^2 (chapter 2).

    An identity at every w: chapter 2 measures how the residual term scales
    with the width, so the decomposition itself is checked here, densely.
    """
    model = nk.mlp(3, 5, 2, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(3))
    x = jax.random.normal(jax.random.PRNGKey(4), (6, 3))
    y = jnp.linspace(-1.0, 1.0, 6)[:, None]
    flat, unravel = ravel_pytree(params)
    outputs = lambda w: model.apply_fn(unravel(w), x)[:, 0]
    residual = outputs(flat) - y[:, 0]
    jac = jax.jacrev(outputs)(flat)                                   # (n, P)
    per_example = jax.jacfwd(jax.jacrev(outputs))(flat)               # (n, P, P)
    expected = jac.T @ jac / 6 + jnp.einsum("i,ipq->pq", residual, per_example) / 6
    loss_hessian = nk.hessian.dense_hessian(nk.mse_loss(model.apply_fn, x, y), params)
    np.testing.assert_allclose(loss_hessian, expected, rtol=1e-10, atol=1e-12)


def test_top_abs_eigenvalue_vmaps_over_keys_and_matches_spectral_norm(problem):
    fn, params = problem[0], problem[1]
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    batched = jax.jit(jax.vmap(lambda k: nk.hessian.top_abs_eigenvalue(fn, params, k, 30)))(keys)
    expected = [nk.spectral_norm(fn, params, key=k, num_iters=30) for k in keys]
    np.testing.assert_allclose(batched, expected, rtol=1e-12)


def test_top_abs_eigenvalue_stops_at_breakdown():
    # rank-2 Hessian diag(3, -5, 0, ...): the Krylov space is exhausted after 2 steps
    fn = lambda p: 1.5 * p["a"][0] ** 2 - 2.5 * p["a"][1] ** 2
    params = {"a": jnp.ones(6)}
    got = nk.hessian.top_abs_eigenvalue(fn, params, jax.random.PRNGKey(1), 6)
    assert float(got) == pytest.approx(5.0, rel=1e-12)
