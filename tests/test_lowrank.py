"""Tests for ntkbook.lowrank: rank and alignment against closed forms, invariants by hand.

(The conservation of the invariants under normalized gradient descent is
tested in tests/test_margins.py, with the step.)

Tolerances (float64, JAX_ENABLE_X64=1 for the session):
  1e-12  closed forms computed through one SVD of a small matrix (rounding).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import linear_tail
from ntkbook import lowrank as lr


def _orthogonal(n, key):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    return q


def test_sigma_ratio_closed_forms():
    key = jax.random.PRNGKey(0)
    u, v = jax.random.normal(key, (2, 7))
    assert float(lr.sigma_ratio(jnp.outer(u, v[:5]))) < 1e-12
    assert abs(float(lr.sigma_ratio(3.0 * _orthogonal(6, key))) - 1.0) < 1e-12
    assert abs(float(lr.sigma_ratio(jnp.diag(jnp.array([4.0, 3.0, 1.0])))) - 0.75) < 1e-12
    batch = jnp.stack([jnp.outer(u, v), _orthogonal(7, key)])
    np.testing.assert_allclose(lr.sigma_ratio(batch), [0.0, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="w must"):
        lr.sigma_ratio(jnp.ones((1, 5)))


def test_stable_rank_closed_forms():
    key = jax.random.PRNGKey(1)
    u, v = jax.random.normal(key, (2, 6))
    assert abs(float(lr.stable_rank(jnp.outer(u, v))) - 1.0) < 1e-12
    assert abs(float(lr.stable_rank(_orthogonal(5, key))) - 5.0) < 1e-12
    assert abs(float(lr.stable_rank(jnp.diag(jnp.array([4.0, 3.0])))) - 25.0 / 16.0) < 1e-12


def test_alignment_closed_form():
    key = jax.random.PRNGKey(2)
    a, b, c = jax.random.normal(key, (3, 4))
    w_lower = jnp.outer(a, b)          # u_1 = a/|a|
    assert abs(float(lr.alignment(w_lower, jnp.outer(c, a))) - 1.0) < 1e-12
    e = jnp.eye(4)
    assert float(lr.alignment(jnp.outer(e[0], b), jnp.outer(c, e[1]))) < 1e-12
    with pytest.raises(ValueError, match="w_upper"):
        lr.alignment(jnp.ones((3, 2)), jnp.ones((2, 4)))


def test_stable_neurons_hand_built():
    w1 = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    x = jnp.array([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0]])
    params = [w1, jnp.ones((2, 4)), jnp.ones((1, 2))]
    pre, _ = linear_tail.relu_preactivations(params, x, num_relu=1)
    np.testing.assert_array_equal(lr.stable_neurons(pre[0]), [True, False, True, False])
    # a leading (snapshot) axis: a neuron must be active at every snapshot
    both = jnp.stack([pre[0], pre[0].at[0, 0].set(-1.0)])
    np.testing.assert_array_equal(lr.stable_neurons(both), [False, False, True, False])
    sub = lr.submatrix(w1, lr.stable_neurons(pre[0]))
    np.testing.assert_array_equal(sub, w1[jnp.array([0, 2])])


def test_matrix_invariance_diagonal_is_balancedness():
    params = linear_tail.init_params([3, 4, 4, 3, 2, 1], key=jax.random.PRNGKey(6))
    inv = lr.matrix_invariance(params[1], params[2])
    np.testing.assert_allclose(jnp.diag(inv), -lr.neuron_balancedness(params[1], params[2]),
                               rtol=1e-12)
    sub = lr.matrix_invariance(params[1], params[2], np.array([True, False, True, True]))
    np.testing.assert_allclose(sub, inv[np.ix_([0, 2, 3], [0, 2, 3])], rtol=1e-12)


def test_validation_errors():
    with pytest.raises(ValueError, match="preacts"):
        lr.stable_neurons(jnp.ones(3))
    with pytest.raises(ValueError, match="w must"):
        lr.sigma_ratio(jnp.ones((4, 1)))
