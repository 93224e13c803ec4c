"""Tests for ntkbook.output_layer: dense Hessians, closed forms, invariants.

Tolerances (float64): 1e-10 for identities that are exact up to rounding
(dense chain rule, rank-one norm, f(w0) = 0); 1e-8 relative for Lanczos
(40 steps on <= a few hundred parameters converge to machine precision on the
extreme eigenvalues, 1e-8 leaves room for the random start).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import output_layer as ol

PHIS = {"softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}


def _small_net(key, width=6, depth=2, in_dim=3, b_std=0.0):
    model = nk.mlp(in_dim, width, depth, activation="tanh", b_std=b_std)
    params = model.init_fn(key)
    x = jax.random.normal(jax.random.fold_in(key, 7), (1, in_dim))
    return model, params, x


@pytest.mark.parametrize("name", sorted(PHIS))
def test_hessian_decomposition_matches_dense(name):
    phi = PHIS[name]
    model, params, x = _small_net(jax.random.PRNGKey(0))
    fn_lin = lambda p: model.apply_fn(p, x)[0, 0]  # noqa: E731
    z = fn_lin(params)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    g = jax.grad(lambda w: fn_lin(unravel(w)))(flat)
    h_lin = nk.hessian.dense_hessian(fn_lin, params)
    h_f = nk.hessian.dense_hessian(lambda p: phi(fn_lin(p)), params)
    d1, d2 = jax.grad(phi)(z), jax.grad(jax.grad(phi))(z)
    rank_one = d2 * jnp.outer(g, g)
    # chain rule, densely
    np.testing.assert_allclose(h_f, d1 * h_lin + rank_one, atol=1e-10)
    terms = ol.hessian_terms(fn_lin, phi, params, key=jax.random.PRNGKey(1))
    dense_norm = lambda a: float(jnp.max(jnp.abs(jnp.linalg.eigvalsh(a))))  # noqa: E731
    np.testing.assert_allclose(terms.rank_one_term, dense_norm(rank_one), rtol=1e-10)
    np.testing.assert_allclose(terms.linear_term, dense_norm(d1 * h_lin), rtol=1e-8)
    np.testing.assert_allclose(terms.full, dense_norm(h_f), rtol=1e-8)
    np.testing.assert_allclose(terms.hessian_lin, dense_norm(h_lin), rtol=1e-8)
    np.testing.assert_allclose(terms.grad_sq_norm, float(g @ g), rtol=1e-12)
    assert abs(terms.f_lin - float(z)) < 1e-12
    # triangle inequality
    assert abs(terms.linear_term - terms.rank_one_term) <= terms.full * (1 + 1e-8)
    assert terms.full <= (terms.linear_term + terms.rank_one_term) * (1 + 1e-8)


def test_hessian_terms_identity_output_has_no_rank_one_term():
    model, params, x = _small_net(jax.random.PRNGKey(2))
    fn_lin = lambda p: model.apply_fn(p, x)[0, 0]  # noqa: E731
    terms = ol.hessian_terms(fn_lin, lambda z: z, params, key=jax.random.PRNGKey(0))
    assert terms.rank_one_term == 0.0
    np.testing.assert_allclose(terms.full, terms.linear_term, rtol=1e-8)


def test_hessian_terms_validates():
    with pytest.raises(ValueError, match="fn_lin"):
        ol.hessian_terms(3.0, jnp.tanh, {}, key=jax.random.PRNGKey(0))
    model, params, x = _small_net(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="scalar"):
        ol.hessian_terms(lambda p: model.apply_fn(p, x)[0], jnp.tanh, params,
                         key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("name", ["identity", "sigmoid", "tanh", "softplus"])
def test_inverse_activation_roundtrip(name):
    phi = nk.models.activation_fn(name)
    y = {"identity": jnp.array([-2.0, 0.3]), "sigmoid": jnp.array([0.2, 0.8]),
         "tanh": jnp.array([-0.5, 0.7]), "softplus": jnp.array([0.1, 3.0])}[name]
    np.testing.assert_allclose(phi(ol.inverse_activation(name, y)), y, rtol=1e-12)


def test_inverse_activation_validates():
    with pytest.raises(ValueError, match="name"):
        ol.inverse_activation("relu", 0.5)
    with pytest.raises(ValueError, match="y must lie"):
        ol.inverse_activation("sigmoid", jnp.array([0.5, 1.0]))


def test_kernel_change_plateau_closed_form():
    # sigmoid, targets 0.2/0.8: phi'(logit 0.8) = 0.8 * 0.2 = 0.16, phi'(0) = 1/4
    assert abs(ol.kernel_change_plateau("sigmoid", 0.8) - (1 - (0.16 / 0.25) ** 2)) < 1e-14
    assert abs(ol.kernel_change_plateau("sigmoid", 0.2) - 0.5904) < 1e-14
    # tanh: phi'(arctanh y) = 1 - y^2
    assert abs(ol.kernel_change_plateau("tanh", 0.5) - (1 - 0.75 ** 2)) < 1e-14
    assert ol.kernel_change_plateau("identity", 3.0) == 0.0


def test_predicted_kernel_change_general_and_scalar_case():
    key = jax.random.PRNGKey(5)
    a = jax.random.normal(key, (5, 9))
    ntk = a @ a.T
    # equal factors: independent of the kernel
    np.testing.assert_allclose(ol.predicted_kernel_change(ntk, 0.25, 0.16), 0.5904, rtol=1e-13)
    # general factors against an explicit D K D
    d0 = jnp.linspace(0.2, 0.3, 5)
    d1 = jnp.linspace(0.1, 0.25, 5)
    k0, k1 = jnp.diag(d0) @ ntk @ jnp.diag(d0), jnp.diag(d1) @ ntk @ jnp.diag(d1)
    np.testing.assert_allclose(ol.predicted_kernel_change(ntk, d0, d1),
                               nk.kernel_change(k0, k1), rtol=1e-13)
    with pytest.raises(ValueError, match="ntk_lin"):
        ol.predicted_kernel_change(jnp.ones((2, 3)), 1.0, 1.0)


def test_kernel_of_composed_model_is_dkd():
    """K_f = diag(phi') K_lin diag(phi'), the identity behind the plateau."""
    model, params, _ = _small_net(jax.random.PRNGKey(6))
    x = jax.random.normal(jax.random.PRNGKey(7), (4, 3))
    sig = nk.mlp(3, 6, 2, activation="tanh", output_activation="sigmoid")
    k_lin = nk.empirical_ntk(model.apply_fn, params, x)
    k_f = nk.empirical_ntk(sig.apply_fn, params, x)
    s = jax.nn.sigmoid(model.apply_fn(params, x)[:, 0])
    d = s * (1 - s)
    np.testing.assert_allclose(k_f, d[:, None] * k_lin * d[None, :], rtol=1e-10)


def test_rank_one_norms_match_hessian_terms():
    model, params, _ = _small_net(jax.random.PRNGKey(10))
    x = jax.random.normal(jax.random.PRNGKey(11), (3, 3))
    norms = ol.rank_one_norms(model.apply_fn, jax.nn.softplus, params, x)
    assert norms.shape == (3,)
    for i in range(3):
        fn = nk.hessian.output_fn(model.apply_fn, x[i])
        np.testing.assert_allclose(fn(params), model.apply_fn(params, x[i:i + 1])[0, 0])
        terms = ol.hessian_terms(fn, jax.nn.softplus, params, key=jax.random.PRNGKey(0))
        np.testing.assert_allclose(norms[i], terms.rank_one_term, rtol=1e-12)
    with pytest.raises(ValueError, match="x must"):
        ol.rank_one_norms(model.apply_fn, jnp.tanh, params, x[0])


def test_hessian_terms_traceable_under_jit_and_vmap():
    """hessian_terms inside the caller's jit + vmap over seeds equals the eager call per seed."""
    model = nk.mlp(3, 6, 1, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(12), (3,))
    fn_lin = nk.hessian.output_fn(model.apply_fn, x)
    keys = jax.random.split(jax.random.PRNGKey(13), 3)

    def one(key):
        init_key, lanczos_key = jax.random.split(key)
        return ol.hessian_terms(fn_lin, jax.nn.softplus, model.init_fn(init_key), key=lanczos_key)

    batched = jax.jit(jax.vmap(one))(keys)
    assert batched.full.shape == (3,)
    for s, key in enumerate(keys):
        single = one(key)
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a[s], b, rtol=1e-10)


def test_with_output_composes_and_keeps_params():
    """with_output(model, phi) applies phi to the model's output; same init_fn; any model."""
    base = nk.models.antisymmetric(nk.mlp(3, 4, 1, activation="tanh"))
    sig = ol.with_output(base, "sigmoid")
    key = jax.random.PRNGKey(14)
    params = base.init_fn(key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (5, 3))
    assert sig.init_fn is base.init_fn
    np.testing.assert_allclose(sig.apply_fn(params, x), jax.nn.sigmoid(base.apply_fn(params, x)),
                               rtol=1e-14)
    # the antisymmetric pair has f_lin(w0) = 0, so the sigmoid output is exactly 1/2
    np.testing.assert_allclose(sig.apply_fn(params, x), 0.5, atol=1e-15)
    assert sig.config["output_layer"] == "sigmoid"
    # equals mlp(..., output_activation) on a plain mlp
    plain = nk.mlp(3, 4, 1, activation="tanh")
    p = plain.init_fn(key)
    np.testing.assert_allclose(
        ol.with_output(plain, "softplus").apply_fn(p, x),
        nk.mlp(3, 4, 1, activation="tanh", output_activation="softplus").apply_fn(p, x), rtol=1e-14)
    with pytest.raises(ValueError, match="activation"):
        ol.with_output(plain, "nope")
