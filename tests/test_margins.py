"""Tests for ntkbook.margins: log-losses, the normalized step, margin and direction.

Tolerances (float64, JAX_ENABLE_X64=1 for the session):
  1e-12  closed forms and exact identities (a few ulps of O(1) quantities).
  1e-10  stable log-loss against the naive formula in a safe range (a few ulps
         of log/exp, amplified by < 1e3).
  invariance drift: gradient descent conserves the gradient-flow invariants up
         to O(eta) over a path of fixed length; bounds below are 3x the
         measured drift at eta = 1e-3 and are checked to shrink with eta.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkbook import linear_tail, lowrank, margins
from ntkbook.training import train


@pytest.mark.parametrize("loss", ["exponential", "logistic", "squared"])
def test_log_loss_matches_naive_in_safe_range(loss):
    z = jnp.linspace(-5.0, 30.0, 41)
    np.testing.assert_allclose(margins.log_loss(z, loss), jnp.log(margins.mean_loss(z, loss)),
                               rtol=1e-10)


def test_log_loss_no_underflow():
    z = jnp.array([800.0, 900.0, 1000.0])
    exact = -800.0 + np.log1p(np.exp(-100.0) + np.exp(-200.0)) - np.log(3.0)
    assert float(margins.mean_loss(z, "exponential")) == 0.0   # the naive loss underflows
    assert abs(float(margins.log_loss(z, "exponential")) - exact) < 1e-12
    # log(1 + e^-z) = e^-z (1 - e^-z/2 + ...): same log-loss to ~e^-800
    assert abs(float(margins.log_loss(z, "logistic")) - exact) < 1e-12
    # continuity of the two branches of log(softplus(u)) at u = -20
    u = jnp.array([-20.0 - 1e-9, -20.0 + 1e-9])
    vals = margins._log_softplus(u)
    assert abs(float(vals[1] - vals[0]) - 2e-9) < 1e-12
    assert np.all(np.isfinite(np.asarray(jax.grad(lambda u: jnp.sum(margins._log_softplus(u)))(u))))


def test_loss_validation():
    with pytest.raises(ValueError, match="loss"):
        margins.log_loss(jnp.ones(3), "hinge")
    with pytest.raises(ValueError, match="loss"):
        margins.mean_loss(jnp.ones(3), "hinge")


def test_normalized_gradient_closed_form():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}      # ||g|| = 5
    opt = margins.normalized_gradient(0.5)
    state = opt.init(grads)
    updates, _ = opt.update(grads, state)
    np.testing.assert_allclose(updates["a"], [-0.3, 0.0], rtol=1e-12)
    np.testing.assert_allclose(updates["b"], [[-0.4]], rtol=1e-12)
    assert abs(float(optax.tree.norm(updates)) - 0.5) < 1e-12
    # a traced learning rate (vmap over step lengths) is accepted
    lengths = jax.vmap(lambda lr: optax.tree.norm(
        margins.normalized_gradient(lr).update(grads, optax.EmptyState())[0]))(jnp.array([0.1, 2.0]))
    np.testing.assert_allclose(lengths, [0.1, 2.0], rtol=1e-12)
    with pytest.raises(ValueError, match="learning_rate"):
        margins.normalized_gradient(0.0)


def _tiny(key):
    data_key, init_key = jax.random.split(key)
    x = jax.random.normal(data_key, (6, 3))
    y = jnp.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    model = linear_tail.network([3, 4, 4, 3, 2, 1], num_relu=2)
    return model, model.init_fn(init_key), x, y


def test_normalized_steps_through_train():
    """One training loop: every normalized step has length eta; log L decreases."""
    model, params, x, y = _tiny(jax.random.PRNGKey(7))

    def objective(p):
        return margins.log_loss(y * model.apply_fn(p, x)[:, 0], "exponential")

    result = train(objective, params, margins.normalized_gradient(0.05), num_steps=100,
                   metrics_fn=lambda p: p, record_every=1)
    snaps = result.metrics
    lengths = jnp.sqrt(sum(jnp.sum((s[1:] - s[:-1]) ** 2, axis=(1, 2)) for s in snaps))
    np.testing.assert_allclose(lengths, 0.05, rtol=1e-10)
    assert float(result.losses[-1]) < float(result.losses[0])
    # the step is gradient descent on log L with a rescaled step: the first
    # update is -eta * grad/||grad||
    g = jax.grad(objective)(params)
    norm = optax.tree.norm(g)
    for w0, w1, gi in zip(params, [s[1] for s in snaps], g):
        np.testing.assert_allclose(w1, w0 - 0.05 * gi / norm, rtol=1e-10, atol=1e-14)


def _drifts(eta, path_length=0.5):
    model, params, x, y = _tiny(jax.random.PRNGKey(5))

    def objective(p):
        return margins.log_loss(y * model.apply_fn(p, x)[:, 0], "exponential")

    steps = int(round(path_length / eta))
    final = train(objective, params, margins.normalized_gradient(eta), num_steps=steps).params
    relu_drift = max(float(jnp.max(jnp.abs(lowrank.neuron_balancedness(final[l], final[l + 1])
                                           - lowrank.neuron_balancedness(params[l], params[l + 1]))))
                     for l in range(2))
    lin_drift = max(float(jnp.max(jnp.abs(lowrank.matrix_invariance(final[l], final[l + 1])
                                          - lowrank.matrix_invariance(params[l], params[l + 1]))))
                    for l in range(2, 4))
    moved = float(sum(jnp.linalg.norm(a - b) for a, b in zip(final, params)))
    return relu_drift, lin_drift, moved


def test_invariances_conserved_under_small_normalized_steps():
    """Du, Hu, Lee 2018 (per-neuron) and Arora et al. 2018 (linear layers): O(eta) drift."""
    relu_a, lin_a, moved = _drifts(2e-3)
    relu_b, lin_b, _ = _drifts(1e-3)
    assert moved > 0.3                       # the weights did move
    assert relu_b < 7e-4 and lin_b < 5e-4, (relu_b, lin_b)
    assert relu_b < 0.7 * relu_a and lin_b < 0.7 * lin_a   # O(eta): halves with eta


def test_normalized_margin_is_scale_invariant():
    model, params, x, y = _tiny(jax.random.PRNGKey(3))
    degree = model.config["degree"]

    def gamma(p):
        z = y * model.apply_fn(p, x)[:, 0]
        return margins.normalized_margin(z, optax.tree.norm(p), degree=degree)

    scaled = [3.0 * w for w in params]
    assert abs(float(gamma(scaled)) - float(gamma(params))) < 1e-12 * abs(float(gamma(params))) + 1e-15
    # closed form on hand-made margins, with a batch axis
    z = jnp.array([[1.0, 2.0, 0.5], [4.0, 3.0, 8.0]])
    np.testing.assert_allclose(margins.normalized_margin(z, jnp.array([1.0, 2.0]), degree=2),
                               [0.5, 0.75], rtol=1e-12)
    with pytest.raises(ValueError, match="degree"):
        margins.normalized_margin(z, jnp.ones(2), degree=0)


def test_direction_cosine_closed_forms():
    key = jax.random.PRNGKey(4)
    a = [jax.random.normal(key, (3, 2)), jax.random.normal(jax.random.fold_in(key, 1), (1, 3))]
    assert abs(float(margins.direction_cosine(a, [2.5 * w for w in a])) - 1.0) < 1e-12
    assert abs(float(margins.direction_cosine(a, [-w for w in a])) + 1.0) < 1e-12
    b = [jnp.array([[1.0, 0.0]]), jnp.array([[0.0]])]
    c = [jnp.array([[1.0, 1.0]]), jnp.array([[1.0]])]
    assert abs(float(margins.direction_cosine(b, c)) - 1.0 / np.sqrt(3.0)) < 1e-12
