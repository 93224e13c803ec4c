"""ntkbook.models: shapes, parameterisation constants, validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk


def test_mlp_shapes_and_layers():
    model = nk.mlp(3, 7, 2, b_std=0.5)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert [p["W"].shape for p in params] == [(3, 7), (7, 7), (7, 1)]
    assert all(p["b"].shape == (p["W"].shape[1],) for p in params)
    assert model.apply_fn(params, jnp.ones((5, 3))).shape == (5, 1)
    assert "b" not in nk.mlp(3, 7, 2).init_fn(jax.random.PRNGKey(0))[0]


def test_mlp_matches_hand_written_forward_pass():
    model = nk.mlp(4, 6, 1, activation="tanh", output_activation="sigmoid", w_std=1.3, b_std=0.2)
    (l1, l2) = params = model.init_fn(jax.random.PRNGKey(1))
    x = jax.random.normal(jax.random.PRNGKey(2), (3, 4))
    h = jnp.tanh(1.3 * x @ l1["W"] / 2.0 + 0.2 * l1["b"])
    expected = jax.nn.sigmoid(1.3 * h @ l2["W"] / np.sqrt(6) + 0.2 * l2["b"])
    np.testing.assert_allclose(model.apply_fn(params, x), expected, rtol=1e-12)


def test_ntk_parameterisation_output_variance_is_width_independent():
    # |x| = 1, d = 4: z = sqrt(2) W x / 2 ~ N(0, 1/2), E relu(z)^2 = 1/4, and
    # Var f = w_std^2 E relu(z)^2 = 1/2 exactly, at every width.
    x = jnp.ones((1, 4)) / 2.0
    for width in (16, 1024):
        model = nk.mlp(4, width, 1, activation="relu", w_std=2**0.5)
        keys = jax.random.split(jax.random.PRNGKey(width), 400)
        outs = jax.vmap(lambda k: model.apply_fn(model.init_fn(k), x)[0, 0])(keys)
        # 400 draws: the variance estimate has relative std ~ sqrt(2/400) = 7%.
        assert abs(float(jnp.var(outs)) - 0.5) < 0.1


def test_resnet_shapes_and_identity_when_alpha_zero():
    model = nk.resnet(3, 8, 2, alpha=0.0)
    params = model.init_fn(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    linear = (x @ params["A"] / np.sqrt(3)) @ params["v"] / np.sqrt(8)
    np.testing.assert_allclose(model.apply_fn(params, x)[:, 0], linear, rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_dim=0, width=4, depth=1), "in_dim"),
    (dict(in_dim=2, width=4.0, depth=1), "width"),
    (dict(in_dim=2, width=4, depth=0), "depth"),
    (dict(in_dim=2, width=4, depth=1, activation="gelu"), "activation"),
])
def test_mlp_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nk.mlp(**kwargs)


def test_antisymmetric_is_the_doubling_init():
    """Pair of width m == width-2m MLP with W = [W0, W0], v = [v0; -v0]."""
    d, m = 3, 5
    base = nk.mlp(d, m, 1, activation="tanh")
    pair = nk.models.antisymmetric(base)
    params = pair.init_fn(jax.random.PRNGKey(6))
    x = jax.random.normal(jax.random.PRNGKey(7), (4, d))
    np.testing.assert_array_equal(pair.apply_fn(params, x), 0.0)
    w0, v0 = params["plus"][0]["W"], params["plus"][1]["W"]
    wide = nk.mlp(d, 2 * m, 1, activation="tanh")
    doubled = [{"W": jnp.concatenate([w0, w0], axis=1)}, {"W": jnp.concatenate([v0, -v0])}]
    moved = jax.tree.map(lambda a: a + 0.1, params)
    moved_wide = [{"W": jnp.concatenate([moved["plus"][0]["W"], moved["minus"][0]["W"]], 1)},
                  {"W": jnp.concatenate([moved["plus"][1]["W"], -moved["minus"][1]["W"]])}]
    np.testing.assert_allclose(wide.apply_fn(doubled, x), 0.0, atol=1e-10)
    np.testing.assert_allclose(pair.apply_fn(moved, x), wide.apply_fn(moved_wide, x),
                               atol=1e-10)
    # same tangent kernel at initialisation as the base model
    np.testing.assert_allclose(nk.empirical_ntk(pair.apply_fn, params, x),
                               nk.empirical_ntk(base.apply_fn, params["plus"], x),
                               rtol=1e-10)
