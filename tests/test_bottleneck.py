"""Tests for ntkbook.bottleneck: shapes, validation, the all-identity network in closed form."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import bottleneck


def test_bottleneck_mlp_shapes_and_validation():
    model = bottleneck.bottleneck_mlp(4, 10, 2)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert [l["W"].shape for l in params] == [(4, 10), (10, 2), (2, 10), (10, 1)]
    assert model.apply_fn(params, jnp.ones((3, 4))).shape == (3, 1)
    with pytest.raises(ValueError, match="bottleneck"):
        bottleneck.bottleneck_mlp(4, 10, 0)
    # all-identity network = product of the scaled matrices
    lin = bottleneck.bottleneck_mlp(4, 10, 2, activation="identity")
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    w1, b, w2, v = (l["W"] for l in params)
    expected = x @ w1 @ b @ w2 @ v / jnp.sqrt(4 * 10 * 2 * 10)
    np.testing.assert_allclose(lin.apply_fn(params, x), expected, rtol=1e-12)
    # bottleneck_activation acts on the bottleneck only
    mixed = bottleneck.bottleneck_mlp(4, 10, 2, activation="identity", bottleneck_activation="tanh")
    expected = jnp.tanh(x @ w1 @ b / jnp.sqrt(40.0)) @ w2 @ v / jnp.sqrt(20.0)
    np.testing.assert_allclose(mixed.apply_fn(params, x), expected, rtol=1e-12)


def test_bottleneck_init_is_standard_gaussian():
    """One Gaussian draw reshaped: every weight N(0, 1), layers independent (moments, 4 sigma)."""
    model = bottleneck.bottleneck_mlp(20, 300, 4)
    params = model.init_fn(jax.random.PRNGKey(3))
    flat = jnp.concatenate([layer["W"].ravel() for layer in params])
    n = flat.size                                       # 20*300 + 300*4 + 4*300 + 300 = 8700
    assert abs(float(flat.mean())) < 4 / np.sqrt(n)
    assert abs(float(flat.var()) - 1.0) < 4 * np.sqrt(2 / n)
    # consecutive layers are not copies of each other
    assert not np.allclose(params[1]["W"].ravel()[:1200], params[2]["W"].ravel()[:1200])
    other = model.init_fn(jax.random.PRNGKey(4))
    assert not np.allclose(params[0]["W"], other[0]["W"])
