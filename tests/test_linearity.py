"""Tests of ntkbook.linearity against closed forms and dense computations (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import linearity as lin

# Tolerances (float64): Lanczos with 30 steps on a <= 1,000-parameter Hessian is
# exact to round-off once the Krylov space is exhausted, and within ~1e-8 of
# the top eigenvalue otherwise; closed forms are evaluated in float64.
TOL_EXACT = 1e-10
TOL_LANCZOS = 1e-7


def _probe(d, key=0):
    x = jax.random.normal(jax.random.PRNGKey(key), (d,))
    return x / jnp.linalg.norm(x) * jnp.sqrt(d)


def test_relu_hessian_closed_form():
    """One hidden ReLU layer: ||H||_2 = ||x|| / sqrt(d m) exactly."""
    d, m = 5, 16
    x = 2.0 * _probe(d)
    model = nk.mlp(d, m, 1, activation="relu")
    params = model.init_fn(jax.random.PRNGKey(1))
    norm = float(lin.hessian_norm(model.apply_fn, params, x, key=jax.random.PRNGKey(2)))
    assert abs(norm - float(jnp.linalg.norm(x)) / np.sqrt(d * m)) < TOL_LANCZOS


def test_hessian_norm_matches_dense():
    d, m = 3, 6
    x = _probe(d)
    model = nk.mlp(d, m, 2, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(3))
    dense = nk.hessian.dense_hessian(nk.hessian.output_fn(model.apply_fn, x), params)
    expected = float(np.max(np.abs(np.linalg.eigvalsh(np.asarray(dense)))))
    got = float(lin.hessian_norm(model.apply_fn, params, x, key=jax.random.PRNGKey(4),
                                 num_iters=60))
    assert abs(got - expected) < TOL_LANCZOS * expected


def test_grad_norm_closed_form():
    """||grad f||^2 = (1/m) sum tanh(h)^2 + (1/m) sum v^2 tanh'(h)^2 ||x||^2 / d."""
    d, m = 4, 7
    x = _probe(d)
    model = nk.mlp(d, m, 1, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(5))
    h = x @ params[0]["W"] / np.sqrt(d)
    v = params[1]["W"][:, 0]
    expected = jnp.sqrt(jnp.mean(jnp.tanh(h) ** 2)
                        + jnp.mean(v**2 * (1 - jnp.tanh(h) ** 2) ** 2) * (x @ x) / d)
    assert abs(lin.grad_norm(model.apply_fn, params, x) - float(expected)) < TOL_EXACT


def test_taylor_remainder_closed_forms():
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])

    def linear(p, x):
        return (x @ p["w"])[:, None]

    def quadratic(p, x):
        return ((x @ p["w"]) ** 2)[:, None]

    p0, p1 = {"w": jnp.array([0.3, -0.2])}, {"w": jnp.array([1.0, 0.5])}
    np.testing.assert_allclose(lin.taylor_remainder(linear, p0, p1, x), 0.0, atol=TOL_EXACT)
    expected = ((x @ (p1["w"] - p0["w"])) ** 2)[:, None]
    np.testing.assert_allclose(lin.taylor_remainder(quadratic, p0, p1, x), expected,
                               rtol=TOL_EXACT)
    with pytest.raises(ValueError, match="x must be an"):
        lin.taylor_remainder(linear, p0, p1, x[0])


def test_init_norms_is_one_draw_and_vmaps_over_seeds():
    d, m = 3, 6
    x = _probe(d)
    model = nk.mlp(d, m, 2, activation="tanh")
    keys = jax.random.split(jax.random.PRNGKey(9), 3)
    hess, grad = jax.jit(jax.vmap(lambda k: lin.init_norms(model, x, k)))(keys)
    for k, h, g in zip(keys, hess, grad):
        init_key, lanczos_key = jax.random.split(k)
        params = model.init_fn(init_key)
        assert float(h) == pytest.approx(
            nk.spectral_norm(nk.hessian.output_fn(model.apply_fn, x), params, key=lanczos_key,
                             num_iters=30), rel=1e-12)
        assert float(g) == pytest.approx(float(lin.grad_norm(model.apply_fn, params, x)),
                                         rel=1e-12)


def test_ball_point_is_uniform_in_the_ball():
    params0 = {"a": jnp.zeros((2,)), "b": jnp.ones((1,))}
    keys = jax.random.split(jax.random.PRNGKey(10), 4000)
    points = jax.vmap(lambda k: lin.ball_point(params0, 2.0, k))(keys)
    delta = jnp.concatenate([points["a"], points["b"] - 1.0], axis=1)     # (4000, 3)
    radius = np.asarray(jnp.linalg.norm(delta, axis=1))
    assert radius.max() <= 2.0 + 1e-12
    # uniform in a 3-ball of radius 2: P(r <= 2 t) = t^3
    for t in (0.5, 0.8):
        assert np.mean(radius <= 2.0 * t) == pytest.approx(t**3, abs=0.03)
    assert np.abs(np.asarray(delta.mean(axis=0))).max() < 0.05


def test_path_metrics_dense_and_closed_forms():
    d, m, n = 3, 5, 4
    model = nk.mlp(d, m, 1, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(11), (n, d))
    w0 = model.init_fn(jax.random.PRNGKey(12))
    w = jax.tree.map(lambda a: a + 0.3, w0)
    metrics = lin.path_metrics(model.apply_fn, w0, x)
    at0, at1 = metrics(w0), metrics(w)
    jac = lambda p: nk.ntk.jacobian_matrix(model.apply_fn, p, x)
    k0, k1 = jac(w0) @ jac(w0).T, jac(w) @ jac(w).T
    assert float(at0["ntk_change"]) == pytest.approx(0.0, abs=TOL_EXACT)
    assert float(at1["ntk_change"]) == pytest.approx(
        float(jnp.linalg.norm(k1 - k0) / jnp.linalg.norm(k0)), rel=1e-10)
    assert float(at1["gauss_newton_norm"]) == pytest.approx(
        float(jnp.linalg.eigvalsh(k1)[-1]) / n, rel=1e-10)
    num_params = sum(a.size for a in jax.tree.leaves(w0))
    assert float(at1["distance"]) == pytest.approx(0.3 * np.sqrt(num_params), rel=1e-12)
    gap = lin.taylor_remainder(model.apply_fn, w0, w, x)
    assert float(at1["linearization_gap"]) == pytest.approx(
        float(jnp.sqrt(jnp.mean(gap**2))), rel=1e-12)
