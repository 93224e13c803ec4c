"""ntkbook.ntk: matrix-free empirical NTK vs dense Jacobians and neural-tangents."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk


@pytest.fixture
def setup():
    model = nk.mlp(3, 12, 2, activation="relu", w_std=2**0.5, b_std=0.1)
    params = model.init_fn(jax.random.PRNGKey(0))
    x1 = nk.data.sphere(5, 3, key=jax.random.PRNGKey(1))
    x2 = nk.data.sphere(4, 3, key=jax.random.PRNGKey(2))
    return model, params, x1, x2


def test_empirical_ntk_equals_dense_jacobian_product(setup):
    model, params, x1, x2 = setup
    j1 = nk.ntk.jacobian_matrix(model.apply_fn, params, x1)
    j2 = nk.ntk.jacobian_matrix(model.apply_fn, params, x2)
    np.testing.assert_allclose(nk.empirical_ntk(model.apply_fn, params, x1, x2), j1 @ j2.T,
                               rtol=1e-12, atol=1e-12)


def test_empirical_ntk_symmetric_psd(setup):
    model, params, x1, _ = setup
    ntk = nk.empirical_ntk(model.apply_fn, params, x1)
    np.testing.assert_allclose(ntk, ntk.T, atol=1e-13)
    assert np.linalg.eigvalsh(np.asarray(ntk)).min() > -1e-10


def test_empirical_ntk_matches_neural_tangents(setup):
    import neural_tangents as nt

    model, params, x1, x2 = setup
    nt_fn = nt.empirical_ntk_fn(model.apply_fn, trace_axes=(), vmap_axes=0,
                                implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION)
    expected = nt_fn(x1, x2, params)[:, :, 0, 0]
    np.testing.assert_allclose(nk.empirical_ntk(model.apply_fn, params, x1, x2), expected,
                               rtol=1e-10)


def test_infinite_ntk_matches_stax_and_mean_of_wide_networks():
    # The analytic kernel is the mean of the empirical one: check it on a wide
    # one-hidden-layer erf net by Monte Carlo over initialisations.
    x = nk.data.sphere(3, 4, key=jax.random.PRNGKey(3))
    model = nk.mlp(4, 256, 1, activation="erf", w_std=1.5, b_std=0.3)
    exact = nk.infinite_ntk_fn(model.config)(x)
    keys = jax.random.split(jax.random.PRNGKey(4), 64)
    mean = jnp.mean(jnp.stack([nk.empirical_ntk(model.apply_fn, model.init_fn(k), x)
                               for k in keys]), axis=0)
    # Monte Carlo error ~ 1/sqrt(64 * 256): 1.5% of the kernel scale is ~6 sigma.
    np.testing.assert_allclose(mean, exact, atol=0.015 * float(jnp.abs(exact).max()))


def test_infinite_ntk_rejects_output_activation():
    with pytest.raises(ValueError, match="output_activation"):
        nk.infinite_ntk_fn(nk.mlp(2, 4, 1, output_activation="tanh").config)


def test_kernel_change():
    a = jnp.eye(3)
    assert float(nk.kernel_change(a, 1.5 * a)) == pytest.approx(0.5)


def test_empirical_ntk_validates_shapes(setup):
    model, params, x1, _ = setup
    with pytest.raises(ValueError, match="x1 and x2"):
        nk.empirical_ntk(model.apply_fn, params, x1, jnp.ones((2, 5)))
