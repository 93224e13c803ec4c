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


@pytest.mark.parametrize("depth,b_std", [(1, 0.0), (2, 0.0), (1, 0.5), (3, 0.3)])
def test_antisymmetric_init_zero_output_and_gaussian_weights(depth, b_std):
    model, params, _ = _small_net(jax.random.PRNGKey(3), width=8, depth=depth, b_std=b_std)
    new = ol.antisymmetric_init(params)
    x = jax.random.normal(jax.random.PRNGKey(4), (11, 3))
    assert float(jnp.max(jnp.abs(model.apply_fn(new, x)))) < 1e-12
    # structure kept, inputs untouched, earlier layers unchanged
    assert jax.tree.structure(new) == jax.tree.structure(params)
    assert not np.allclose(model.apply_fn(params, x), 0.0)
    for a, b in zip(jax.tree.leaves(new[:-2]), jax.tree.leaves(params[:-2])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(new[-2]["W"][:, :4], params[-2]["W"][:, :4])
    np.testing.assert_array_equal(new[-1]["W"][4:], -params[-1]["W"][:4])
    # the output still has a non-zero gradient: the kernel is not degenerate
    ntk = nk.empirical_ntk(model.apply_fn, new, x)
    assert float(jnp.linalg.eigvalsh(ntk)[-1]) > 1e-3


def test_antisymmetric_init_validates():
    with pytest.raises(ValueError, match="params"):
        ol.antisymmetric_init({"W": jnp.ones((2, 2))})
    model = nk.mlp(3, 5, 1)
    with pytest.raises(ValueError, match="even"):
        ol.antisymmetric_init(model.init_fn(jax.random.PRNGKey(0)))


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


def test_pl_constant_inequality_and_equality():
    """||grad L||^2 >= 2 mu L, with equality when the residual is the bottom eigenvector."""
    key = jax.random.PRNGKey(8)
    n, p = 5, 12
    phi_mat = jax.random.normal(key, (n, p))
    apply_fn = lambda w, x: (x @ w)[:, None]  # noqa: E731  linear model, x = features
    w0 = jax.random.normal(jax.random.fold_in(key, 1), (p,))
    ntk = phi_mat @ phi_mat.T
    mu = float(ol.pl_constant(ntk))
    np.testing.assert_allclose(mu, float(jnp.linalg.eigvalsh(ntk)[0]) / n, rtol=1e-13)
    for y in [jax.random.normal(jax.random.fold_in(key, 2), (n,)),
              apply_fn(w0, phi_mat)[:, 0] - jnp.linalg.eigh(ntk)[1][:, 0]]:
        loss_fn = nk.mse_loss(apply_fn, phi_mat, y)
        metrics = ol.tangent_kernel_metrics(apply_fn, loss_fn, phi_mat)(w0)
        np.testing.assert_allclose(metrics["ntk"], ntk, rtol=1e-12)
        assert float(metrics["grad_sq_norm"]) >= 2 * mu * float(loss_fn(w0)) * (1 - 1e-12)
    # the second y makes the residual the bottom eigenvector: equality
    np.testing.assert_allclose(float(metrics["grad_sq_norm"]), 2 * mu * float(loss_fn(w0)),
                               rtol=1e-10)
    # batched input
    assert ol.pl_constant(jnp.stack([ntk, 2 * ntk])).shape == (2,)
    with pytest.raises(ValueError, match="ntk"):
        ol.pl_constant(jnp.ones((3,)))


def test_bottleneck_mlp_shapes_and_validation():
    model = ol.bottleneck_mlp(4, 10, 2)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert [l["W"].shape for l in params] == [(4, 10), (10, 2), (2, 10), (10, 1)]
    assert model.apply_fn(params, jnp.ones((3, 4))).shape == (3, 1)
    with pytest.raises(ValueError, match="bottleneck"):
        ol.bottleneck_mlp(4, 10, 0)
    # all-identity network = product of the scaled matrices
    lin = ol.bottleneck_mlp(4, 10, 2, activation="identity")
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    w1, b, w2, v = (l["W"] for l in params)
    expected = x @ w1 @ b @ w2 @ v / jnp.sqrt(4 * 10 * 2 * 10)
    np.testing.assert_allclose(lin.apply_fn(params, x), expected, rtol=1e-12)
    # bottleneck_activation acts on the bottleneck only
    mixed = ol.bottleneck_mlp(4, 10, 2, activation="identity", bottleneck_activation="tanh")
    expected = jnp.tanh(x @ w1 @ b / jnp.sqrt(40.0)) @ w2 @ v / jnp.sqrt(20.0)
    np.testing.assert_allclose(mixed.apply_fn(params, x), expected, rtol=1e-12)


def test_gd_from_antisymmetric_init_matches_single_runs():
    key = jax.random.PRNGKey(9)
    x = jax.random.normal(key, (6, 3))
    y = jnp.linspace(-0.5, 0.5, 6)[:, None]
    model = nk.mlp(3, 16, 1, activation="tanh")
    keys = nk.notebook.point_keys(key, 2)
    result, lrs = ol.gd_from_antisymmetric_init(model, x, y, keys, num_steps=20, record_every=5)
    assert result.losses.shape == (2, 21)
    assert result.metrics["ntk"].shape == (2, 5, 6, 6)
    assert result.metrics["grad_sq_norm"].shape == (2, 5)
    for s in range(2):
        params = ol.antisymmetric_init(model.init_fn(keys[s]))
        ntk0 = nk.empirical_ntk(model.apply_fn, params, x)
        np.testing.assert_allclose(lrs[s], 6 / jnp.linalg.eigvalsh(ntk0)[-1], rtol=1e-12)
        np.testing.assert_allclose(result.metrics["ntk"][s, 0], ntk0, rtol=1e-10)
        # initial loss: f(w0) = 0 so L0 = |y|^2 / (2n)
        np.testing.assert_allclose(result.losses[s, 0], float(jnp.mean(y ** 2)) / 2, rtol=1e-12)
        single = nk.gradient_descent(nk.mse_loss(model.apply_fn, x, y), params,
                                     learning_rate=float(lrs[s]), num_steps=20)
        np.testing.assert_allclose(result.losses[s], single.losses, rtol=1e-9)
    assert bool(jnp.all(result.losses[:, -1] < result.losses[:, 0])), result.losses[:, [0, -1]]
    with pytest.raises(ValueError, match="init_keys"):
        ol.gd_from_antisymmetric_init(model, x, y, keys[0], num_steps=20, record_every=5)


def test_rank_one_norms_and_scalar_output_fn():
    model, params, _ = _small_net(jax.random.PRNGKey(10))
    x = jax.random.normal(jax.random.PRNGKey(11), (3, 3))
    norms = ol.rank_one_norms(model.apply_fn, jax.nn.softplus, params, x)
    assert norms.shape == (3,)
    for i in range(3):
        fn = ol.scalar_output_fn(model.apply_fn, x[i])
        np.testing.assert_allclose(fn(params), model.apply_fn(params, x[i:i + 1])[0, 0])
        terms = ol.hessian_terms(fn, jax.nn.softplus, params, key=jax.random.PRNGKey(0))
        np.testing.assert_allclose(norms[i], terms.rank_one_term, rtol=1e-12)
    with pytest.raises(ValueError, match="x must"):
        ol.scalar_output_fn(model.apply_fn, x)
    with pytest.raises(ValueError, match="x must"):
        ol.rank_one_norms(model.apply_fn, jnp.tanh, params, x[0])
