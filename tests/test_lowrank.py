"""Tests for ntkbook.lowrank: closed forms, finite differences, invariances.

Tolerances (float64, JAX_ENABLE_X64=1 for the session):
  1e-12  closed forms computed through one SVD of a small matrix (rounding).
  1e-10  stable log-loss against the naive formula in a safe range (a few ulps
         of log/exp, amplified by < 1e3).
  1e-6   jax.test_util.check_grads default for float64 finite differences.
  invariance drift: gradient descent conserves the gradient-flow invariants up
         to O(eta) over a path of fixed length; bounds below are 3x the
         measured drift at eta = 1e-3 and are checked to shrink with eta.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

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


@pytest.mark.parametrize("loss", ["exponential", "logistic", "squared"])
def test_log_loss_matches_naive_in_safe_range(loss):
    z = jnp.linspace(-5.0, 30.0, 41)
    np.testing.assert_allclose(lr.log_loss(z, loss), jnp.log(lr.mean_loss(z, loss)), rtol=1e-10)


def test_log_loss_no_underflow():
    z = jnp.array([800.0, 900.0, 1000.0])
    exact = -800.0 + np.log1p(np.exp(-100.0) + np.exp(-200.0)) - np.log(3.0)
    assert float(jnp.exp(lr.mean_loss(z, "exponential"))) == 1.0  # the naive loss is 0
    assert abs(float(lr.log_loss(z, "exponential")) - exact) < 1e-12
    # log(1 + e^-z) = e^-z (1 - e^-z/2 + ...): same log-loss to ~e^-800
    assert abs(float(lr.log_loss(z, "logistic")) - exact) < 1e-12
    # continuity of the two branches of log(softplus(u)) at u = -20
    u = jnp.array([-20.0 - 1e-9, -20.0 + 1e-9])
    vals = lr._log_softplus(u)
    assert abs(float(vals[1] - vals[0]) - 2e-9) < 1e-12
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda u: jnp.sum(lr._log_softplus(u)))(u))))


def _tiny(key, skip=False):
    data_key, init_key = jax.random.split(key)
    x = jax.random.normal(data_key, (6, 3))
    y = jnp.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    params = lr.init_params([3, 4, 4, 3, 2, 1], key=init_key)
    return params, x, y


@pytest.mark.parametrize("loss", ["exponential", "logistic", "squared"])
@pytest.mark.parametrize("skip", [False, True])
def test_gradient_finite_differences(loss, skip):
    params, x, y = _tiny(jax.random.PRNGKey(3))

    def fn(p):
        return lr.log_loss(lr.margins(p, x, y, num_relu=2, skip=skip), loss)

    pre, _ = lr.relu_preactivations(params, x, num_relu=2, skip=skip)
    assert min(float(jnp.min(jnp.abs(a))) for a in pre) > 1e-3   # away from ReLU kinks
    check_grads(fn, (params,), order=1, modes=["rev"], eps=1e-6)


def test_apply_deep_linear_is_product_and_skip_by_hand():
    params, x, _ = _tiny(jax.random.PRNGKey(4))
    prod = params[4] @ params[3] @ params[2] @ params[1] @ params[0]
    np.testing.assert_allclose(lr.apply(params, x, num_relu=0), (x @ prod.T)[:, 0], rtol=1e-12)
    relu = jax.nn.relu
    h1 = relu(x @ params[0].T)
    h2 = h1 + relu(h1 @ params[1].T)
    by_hand = h2 @ params[2].T @ params[3].T @ params[4].T
    np.testing.assert_allclose(lr.apply(params, x, num_relu=2, skip=True), by_hand[:, 0], rtol=1e-12)


def _drifts(eta, path_length=0.5, loss="exponential"):
    params, x, y = _tiny(jax.random.PRNGKey(5))
    steps = int(round(path_length / eta))
    hist = lr.train(params, x, y, num_relu=2, loss=loss, eta=eta, record_steps=[steps])
    s = hist.snapshots
    relu_drift = max(float(jnp.max(jnp.abs(lr.neuron_balancedness(s[l][-1], s[l + 1][-1])
                                           - lr.neuron_balancedness(s[l][0], s[l + 1][0]))))
                     for l in range(2))
    lin_drift = max(float(jnp.max(jnp.abs(lr.matrix_invariance(s[l][-1], s[l + 1][-1])
                                          - lr.matrix_invariance(s[l][0], s[l + 1][0]))))
                    for l in range(2, 4))
    moved = float(sum(jnp.linalg.norm(a - b) for a, b in zip(hist.params, params)))
    return relu_drift, lin_drift, moved


def test_invariances_conserved_under_small_step_gd():
    """Du, Hu, Lee 2018 (per-neuron) and Arora et al. 2018 (linear layers)."""
    relu_a, lin_a, moved = _drifts(2e-3)
    relu_b, lin_b, _ = _drifts(1e-3)
    assert moved > 0.3                       # the weights did move
    assert relu_b < 7e-4 and lin_b < 5e-4, (relu_b, lin_b)
    assert relu_b < 0.7 * relu_a and lin_b < 0.7 * lin_a   # O(eta): halves with eta


def test_stable_neurons_hand_built():
    w1 = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    x = jnp.array([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0]])
    params = [w1, jnp.ones((2, 4)), jnp.ones((1, 2))]
    pre, _ = lr.relu_preactivations(params, x, num_relu=1)
    np.testing.assert_array_equal(lr.stable_neurons(pre[0]), [True, False, True, False])
    # a leading (snapshot) axis: a neuron must be active at every snapshot
    both = jnp.stack([pre[0], pre[0].at[0, 0].set(-1.0)])
    np.testing.assert_array_equal(lr.stable_neurons(both), [False, False, True, False])
    sub = lr.submatrix(w1, lr.stable_neurons(pre[0]))
    np.testing.assert_array_equal(sub, w1[jnp.array([0, 2])])


def test_matrix_invariance_diagonal_is_balancedness():
    params, _, _ = _tiny(jax.random.PRNGKey(6))
    inv = lr.matrix_invariance(params[1], params[2])
    np.testing.assert_allclose(jnp.diag(inv), -lr.neuron_balancedness(params[1], params[2]),
                               rtol=1e-12)
    sub = lr.matrix_invariance(params[1], params[2], np.array([True, False, True, True]))
    np.testing.assert_allclose(sub, inv[np.ix_([0, 2, 3], [0, 2, 3])], rtol=1e-12)


def test_train_reproducible_and_records():
    params, x, y = _tiny(jax.random.PRNGKey(7))
    kw = dict(num_relu=2, loss="exponential", eta=0.05, record_steps=[1, 10, 100])
    a, b = lr.train(params, x, y, **kw), lr.train(params, x, y, **kw)
    np.testing.assert_array_equal(a.steps, [0, 1, 10, 100])
    assert a.snapshots[0].shape == (4, 4, 3) and a.log_loss.shape == (4,)
    for wa, wb in zip(a.params, b.params):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.snapshots[2][-1], a.params[2])
    # normalised steps have length eta
    step = jnp.sqrt(sum(jnp.sum((s[1] - s[0]) ** 2) for s in a.snapshots))
    assert abs(float(step) - 0.05) < 1e-12
    assert float(a.log_loss[-1]) < float(a.log_loss[0])


def test_validation_errors():
    params, x, y = _tiny(jax.random.PRNGKey(8))
    with pytest.raises(ValueError, match="loss"):
        lr.train(params, x, y, num_relu=2, loss="hinge", eta=0.1, record_steps=[1])
    with pytest.raises(ValueError, match="num_relu"):
        lr.train(params, x, y, num_relu=5, loss="exponential", eta=0.1, record_steps=[1])
    with pytest.raises(ValueError, match="eta"):
        lr.train(params, x, y, num_relu=2, loss="exponential", eta=0.0, record_steps=[1])
    with pytest.raises(ValueError, match="record_steps"):
        lr.train(params, x, y, num_relu=2, loss="exponential", eta=0.1, record_steps=[5, 2])
    with pytest.raises(ValueError, match="rule"):
        lr.train(params, x, y, num_relu=2, loss="exponential", eta=0.1, record_steps=[1],
                 rule="adam")
    with pytest.raises(ValueError, match="widths"):
        lr.init_params([3, 4], key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="preacts"):
        lr.stable_neurons(jnp.ones(3))


def test_ball_data():
    x, y = lr.ball_data(50, 2, key=jax.random.PRNGKey(9), margin=0.1, bias=1.5)
    assert x.shape == (50, 3) and y.shape == (50,)
    r = jnp.linalg.norm(x[:, :2], axis=1) / jnp.sqrt(2.0)
    np.testing.assert_array_equal(x[:, 2], 1.5)
    assert bool(jnp.all(jnp.where(y > 0, r <= 0.9, r >= 1.1)))


@pytest.mark.parametrize("num_relu,skip", [(0, False), (1, True), (2, False), (2, True), (3, False)])
def test_flag_forward_matches_apply(num_relu, skip):
    params, x, _ = _tiny(jax.random.PRNGKey(10))
    cfg = lr._config(params, num_relu=num_relu, loss="exponential", eta=0.1, skip=skip)
    np.testing.assert_allclose(lr._flag_forward(params, x, cfg[0], cfg[1]),
                               lr.apply(params, x, num_relu=num_relu, skip=skip), rtol=1e-12)
