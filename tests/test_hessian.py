"""ntkbook.hessian: HVPs vs finite differences and dense Hessians; Lanczos norm."""
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
