"""Tests for ntkbook.pruning: the gated MLP and residual MLP (shapes, init, gates per unit).

Float64 (JAX_ENABLE_X64=1): the forward passes are compared with the same
sums written by hand, to 1e-12.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import pruning as pr

EXACT = 1e-12


@pytest.mark.parametrize("factory", [pr.gated_mlp, pr.gated_resmlp])
def test_shapes_and_init_is_relu(factory):
    model = factory(2, 8, 3, 4)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert len(params["s"]) == 3 and all(s.shape == (8,) for s in params["s"])
    assert all(bool(jnp.all(s == 1)) for s in params["s"])
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
    assert model.apply_fn(params, x).shape == (5, 4)


@pytest.mark.parametrize("bad", [dict(width=0), dict(depth=-1), dict(num_classes=1.5)])
def test_model_validation(bad):
    kwargs = dict(in_dim=2, width=4, depth=2, num_classes=3) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        pr.gated_mlp(**kwargs)


def test_forward_passes_by_hand():
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 2))
    s = [jnp.array([1.0, 0.0, 0.5]), jnp.array([0.0, 1.0, 1.0])]
    act = lambda z, g: jnp.maximum(z, 0) + (1 - g) * jnp.minimum(z, 0)
    mlp = pr.gated_mlp(2, 3, 2, 2)
    p = {**mlp.init_fn(jax.random.PRNGKey(0)), "s": s}
    h = x
    for layer, g in zip(p["layers"][:-1], s):
        h = act(h @ layer["W"] + layer["b"], g)
    np.testing.assert_allclose(mlp.apply_fn(p, x), h @ p["layers"][-1]["W"] + p["layers"][-1]["b"], atol=EXACT)
    res = pr.gated_resmlp(2, 3, 2, 2)
    p = {**res.init_fn(jax.random.PRNGKey(0)), "s": s}
    h = x @ p["embed"]["W"] + p["embed"]["b"]
    for blk, g in zip(p["blocks"], s):
        h = h + act(h @ blk["W"] + blk["b"], g) @ blk["V"] + blk["c"]
    np.testing.assert_allclose(res.apply_fn(p, x), h @ p["out"]["W"] + p["out"]["b"], atol=EXACT)
