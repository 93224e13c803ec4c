"""Tests for ntkbook.convnets: the convolution against XLA's, shapes, gates per channel.

Float64 (JAX_ENABLE_X64=1): two implementations of the same sums agree to
round-off, 1e-12 on O(1) outputs.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import convnets as cn
from ntkbook import gates as ga

EXACT = 1e-12


@pytest.mark.parametrize("k,stride,length", [(3, 1, 10), (5, 2, 40), (3, 2, 9), (5, 4, 40)])
def test_conv1d_matches_lax_conv(k, stride, length):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    h = jax.random.normal(keys[0], (4, length, 3))
    w = jax.random.normal(keys[1], (k, 3, 5))
    b = jax.random.normal(keys[2], (5,))
    ref = jax.lax.conv_general_dilated(h, w, (stride,), [(k // 2, k // 2)],
                                       dimension_numbers=("NWC", "WIO", "NWC")) + b
    out = cn.conv1d(h, w, b, stride=stride)
    assert out.shape == (4, cn.conv_length(length, k, stride), 5)
    np.testing.assert_allclose(out, ref, atol=EXACT)


@pytest.mark.parametrize("factory", [cn.gated_cnn, cn.gated_rescnn])
def test_shapes_init_and_linear_network(factory):
    model = factory(40, 6, 3, 10)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert len(params["s"]) == 3 and all(s.shape == (6,) and bool(jnp.all(s == 1)) for s in params["s"])
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 40))
    assert model.apply_fn(params, x).shape == (7, 10)
    lin = ga.linear_params(params)       # every channel linear: an affine map of the input
    f = lambda v: model.apply_fn(lin, v[None])[0]
    np.testing.assert_allclose(f(0.3 * x[0] + 0.7 * x[1]), 0.3 * f(x[0]) + 0.7 * f(x[1]), atol=1e-10)
    assert not np.allclose(model.apply_fn(params, 0.3 * x[:1] + 0.7 * x[1:2]),
                           0.3 * model.apply_fn(params, x[:1]) + 0.7 * model.apply_fn(params, x[1:2]))


def test_one_gate_acts_on_one_channel_at_every_position():
    model = cn.gated_cnn(16, 4, 1, 3)
    params = model.init_fn(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 16))
    conv = params["convs"][0]
    z = cn.conv1d(x[..., None], conv["W"], conv["b"], stride=2)
    s = jnp.array([1.0, 0.0, 0.5, 1.0])
    h = jnp.concatenate([jax.nn.relu(z[..., :1]), z[..., 1:2], jnp.where(z[..., 2:3] > 0, z[..., 2:3], 0.5 * z[..., 2:3]),
                         jax.nn.relu(z[..., 3:])], axis=-1)
    expected = h.reshape(5, -1) @ params["out"]["W"] + params["out"]["b"]
    np.testing.assert_allclose(model.apply_fn({**params, "s": [s]}, x), expected, atol=EXACT)


def test_validation():
    with pytest.raises(ValueError, match="channels"):
        cn.gated_cnn(40, 0, 3, 10)
    with pytest.raises(ValueError, match="depth"):
        cn.gated_rescnn(40, 4, -1, 10)
