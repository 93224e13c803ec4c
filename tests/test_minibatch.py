"""Tests for ntkbook.minibatch: SGD through the one training loop equals a hand-written SGD.

Float64 (JAX_ENABLE_X64=1): the two loops do the same arithmetic in the
same order, so they agree to round-off (1e-12).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ntkbook as nk
from ntkbook import minibatch as mb


def _loss(params, x, y):
    return 0.5 * jnp.mean((x @ params["w"] - y) ** 2)


def test_train_with_minibatches_equals_hand_written_sgd():
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(jax.random.PRNGKey(1), (50, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5])
    params = {"w": jnp.zeros(3)}
    fn = mb.objective(_loss, x, y, key=key, batch_size=8)
    result = nk.train(fn, mb.start(params), mb.count_steps(optax.sgd(0.1)), num_steps=20)
    w = params["w"]
    for t in range(20):
        idx = jax.random.randint(jax.random.fold_in(key, t), (8,), 0, 50)
        w = w - 0.1 * jax.grad(lambda w: _loss({"w": w}, x[idx], y[idx]))(w)
    np.testing.assert_allclose(result.params["params"]["w"], w, atol=1e-12)
    assert float(result.params["step"]) == 20.0
    assert result.losses.shape == (21,)


def test_start_and_validation():
    state = mb.start({"w": jnp.zeros(2, jnp.float32)})
    assert state["step"].dtype == jnp.float32 and float(state["step"]) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        mb.objective(_loss, jnp.zeros((4, 2)), jnp.zeros(4), key=jax.random.PRNGKey(0), batch_size=0)
