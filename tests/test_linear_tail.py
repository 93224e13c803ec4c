"""Tests for ntkbook.linear_tail: the network by hand, finite differences, homogeneity, data.

Tolerances (float64, JAX_ENABLE_X64=1 for the session):
  1e-12  products of a few small matrices against the same products by hand.
  1e-6   jax.test_util.check_grads default for float64 finite differences.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ntkbook import linear_tail, margins


def _tiny(key):
    data_key, init_key = jax.random.split(key)
    x = jax.random.normal(data_key, (6, 3))
    y = jnp.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    params = linear_tail.init_params([3, 4, 4, 3, 2, 1], key=init_key)
    return params, x, y


def test_deep_linear_is_product_and_skip_by_hand():
    params, x, _ = _tiny(jax.random.PRNGKey(4))
    prod = params[4] @ params[3] @ params[2] @ params[1] @ params[0]
    deep = linear_tail.network([3, 4, 4, 3, 2, 1], num_relu=0)
    np.testing.assert_allclose(deep.apply_fn(params, x), x @ prod.T, rtol=1e-12)
    relu = jax.nn.relu
    h1 = relu(x @ params[0].T)
    h2 = h1 + relu(h1 @ params[1].T)
    by_hand = h2 @ params[2].T @ params[3].T @ params[4].T
    skip = linear_tail.network([3, 4, 4, 3, 2, 1], num_relu=2, skip=True)
    np.testing.assert_allclose(skip.apply_fn(params, x), by_hand, rtol=1e-12)
    assert skip.apply_fn(params, x).shape == (6, 1)


@pytest.mark.parametrize("loss", ["exponential", "logistic", "squared"])
@pytest.mark.parametrize("skip", [False, True])
def test_gradient_finite_differences(loss, skip):
    params, x, y = _tiny(jax.random.PRNGKey(3))
    model = linear_tail.network([3, 4, 4, 3, 2, 1], num_relu=2, skip=skip)

    def fn(p):
        return margins.log_loss(y * model.apply_fn(p, x)[:, 0], loss)

    pre, _ = linear_tail.relu_preactivations(params, x, num_relu=2, skip=skip)
    assert min(float(jnp.min(jnp.abs(a))) for a in pre) > 1e-3   # away from ReLU kinks
    check_grads(fn, (params,), order=1, modes=["rev"], eps=1e-6)


def test_homogeneous_of_degree_k():
    params, x, _ = _tiny(jax.random.PRNGKey(6))
    model = linear_tail.network([3, 4, 4, 3, 2, 1], num_relu=2)
    assert model.config["degree"] == 5
    np.testing.assert_allclose(model.apply_fn([2.0 * w for w in params], x),
                               2.0 ** 5 * model.apply_fn(params, x), rtol=1e-12)


def test_init_fn_matches_init_params():
    model = linear_tail.network([3, 5, 1], num_relu=1, scale=2.0)
    key = jax.random.PRNGKey(0)
    for a, b in zip(model.init_fn(key), linear_tail.init_params([3, 5, 1], key=key, scale=2.0)):
        np.testing.assert_array_equal(a, b)
    assert [w.shape for w in model.init_fn(key)] == [(5, 3), (1, 5)]


def test_validation_errors():
    with pytest.raises(ValueError, match="widths"):
        linear_tail.init_params([3, 4], key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="widths"):
        linear_tail.network([3, 4, 2], num_relu=1)
    with pytest.raises(ValueError, match="num_relu"):
        linear_tail.network([3, 4, 4, 1], num_relu=3)
    with pytest.raises(ValueError, match="skip"):
        linear_tail.network([3, 4, 5, 1], num_relu=2, skip=True)


def test_ball_data():
    x, y = linear_tail.ball_data(50, 2, key=jax.random.PRNGKey(9), margin=0.1, bias=1.5)
    assert x.shape == (50, 3) and y.shape == (50,)
    r = jnp.linalg.norm(x[:, :2], axis=1) / jnp.sqrt(2.0)
    np.testing.assert_array_equal(x[:, 2], 1.5)
    assert bool(jnp.all(jnp.where(y > 0, r <= 0.9, r >= 1.1)))
