"""Tests for ntkbook.gates: the gated unit, the proximal step and its optax transform.

Tolerances (float64, session runs with JAX_ENABLE_X64=1): closed forms are
exact up to 1e-12; the grid searches that check a minimiser are as fine as
their grid spacing (1e-4 .. 1e-5).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ntkbook import gates as ga
from ntkbook import pruning as pr

EXACT = 1e-12


def test_gated_act_endpoints_and_prelu_form():
    z = jnp.linspace(-3, 3, 13)
    np.testing.assert_allclose(ga.gated_act(z, jnp.ones(13)), jax.nn.relu(z), atol=EXACT)
    np.testing.assert_allclose(ga.gated_act(z, jnp.zeros(13)), z, atol=EXACT)
    a = 0.3  # PReLU with negative slope a has gate s = 1 - a
    np.testing.assert_allclose(ga.gated_act(z, jnp.full(13, 1 - a)), jnp.where(z > 0, z, a * z),
                               atol=EXACT)


def test_soft_threshold_is_the_prox_of_l1():
    s = jnp.array([-2.0, -0.3, -0.1, 0.0, 0.05, 0.2, 1.5])
    out = ga.soft_threshold(s, 0.2)
    np.testing.assert_allclose(out, [-1.8, -0.1, 0.0, 0.0, 0.0, 0.0, 1.3], atol=EXACT)
    grid = jnp.linspace(-3, 3, 60001)
    obj = 0.5 * (grid[None, :] - s[:, None]) ** 2 + 0.2 * jnp.abs(grid[None, :])
    np.testing.assert_allclose(out, grid[jnp.argmin(obj, axis=1)], atol=1e-4)


def test_prox_gate_closed_form():
    u = jnp.array([-0.5, 0.05, 0.5, 1.05, 2.0])
    np.testing.assert_allclose(ga.prox_gate(u, 0.1), [0.0, 0.0, 0.4, 0.95, 1.0], atol=EXACT)
    grid = jnp.linspace(0, 1, 100001)
    obj = 0.5 * (grid[None, :] - u[:, None]) ** 2 + 0.1 * grid[None, :]
    np.testing.assert_allclose(ga.prox_gate(u, 0.1), grid[jnp.argmin(obj, axis=1)], atol=1e-5)


def test_prox_gates_transform_step_and_pruning():
    """One step equals the closed form; a gate the prior zeroes stays 0; lam = 0 lets it reopen."""
    gates = [jnp.array([0.5, 0.05, 0.95, 0.0]), jnp.array([1.0, 0.3])]
    grads = [jnp.array([0.0, 0.0, -2.0, -3.0]), jnp.array([1.0, -1.0])]
    tx = ga.prox_gates(0.1, 1.0)
    state = tx.init(gates)
    updates, state = tx.update(grads, state, gates)
    new = optax.apply_updates(gates, updates)
    expected = [ga.prox_gate(s - 0.1 * g, 0.1) for s, g in zip(gates, grads)]
    expected[0] = expected[0].at[3].set(0.0)          # 0 at init: masked (held linear)
    for n, e in zip(new, expected):
        np.testing.assert_allclose(n, e, atol=EXACT)
    np.testing.assert_array_equal(state.mask[0], [1, 0, 1, 0])   # gate 1 was pruned by this step
    # a pruned gate stays 0 even under a large negative gradient, with or without the prior
    updates, _ = ga.prox_gates(0.1, 0.0).update([jnp.full(4, -5.0), jnp.zeros(2)], state, new)
    assert float(optax.apply_updates(new, updates)[0][1]) == 0.0
    # without the prior nothing is pruned: a gate clipped at 0 may come back
    tx0 = ga.prox_gates(0.5, 0.0)
    state0 = tx0.init([jnp.array([0.1])])
    u1, state0 = tx0.update([jnp.array([1.0])], state0, [jnp.array([0.1])])
    s1 = optax.apply_updates([jnp.array([0.1])], u1)
    assert float(s1[0][0]) == 0.0 and float(state0.mask[0][0]) == 1.0
    u2, _ = tx0.update([jnp.array([-1.0])], state0, s1)
    assert float(optax.apply_updates(s1, u2)[0][0]) == pytest.approx(0.5)


def test_gated_optimizer_moves_gates_by_prox_and_weights_by_adam():
    model = pr.gated_mlp(2, 4, 2, 3)
    params = model.init_fn(jax.random.PRNGKey(0))
    grads = jax.tree.map(lambda a: jnp.full_like(a, 0.5), params)
    tx = ga.gated_optimizer(1e-2, gate_lr=0.1, lam=2.0)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    for s, s_new in zip(params["s"], new["s"]):
        np.testing.assert_allclose(s_new, ga.prox_gate(s - 0.1 * 0.5, 0.2), atol=EXACT)
    # Adam's first step moves every weight by learning_rate (clipping rescales g, not the sign)
    w_step = np.asarray(params["layers"][0]["W"] - new["layers"][0]["W"])
    np.testing.assert_allclose(w_step, 1e-2, rtol=1e-6)


def test_linear_network_counts_and_affinity():
    model = pr.gated_mlp(3, 6, 3, 2)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert float(ga.fraction_linear(params)) == 0.0
    lin = ga.linear_params(params)
    assert float(ga.fraction_linear(lin)) == 1.0
    f = lambda x: model.apply_fn(lin, x[None])[0]
    x, y = jnp.ones(3), jnp.arange(3.0)
    np.testing.assert_allclose(f(0.3 * x + 0.7 * y), 0.3 * f(x) + 0.7 * f(y), atol=EXACT)
    gated = {**params, "s": [jnp.array([1.0, 0, 0, 0, 0, 0]), jnp.zeros(6), jnp.ones(6)]}
    np.testing.assert_array_equal(ga.nonlinear_per_layer(gated), [1, 0, 6])
    batched = jax.vmap(model.init_fn)(jax.random.split(jax.random.PRNGKey(1), 3))
    assert ga.fraction_linear(batched).shape == (3,)


def test_cross_entropy_and_accuracy():
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]]))
    labels = jnp.array([0, 1])
    assert float(ga.cross_entropy(logits, labels)) == pytest.approx(-(np.log(0.7) + np.log(0.25)) / 2)
    apply_fn = lambda p, x: x
    assert float(ga.accuracy(apply_fn, None, logits, labels)) == 0.5


def test_best_accuracy_at_and_largest_fraction_within():
    frac = np.array([[0.0, 0.4, 0.8], [0.1, 0.6, 0.9]])
    acc = np.array([[0.99, 0.98, 0.7], [0.99, 0.9, 0.95]])
    out = ga.best_accuracy_at(frac, acc, [0.0, 0.5, 0.85, 0.95])
    np.testing.assert_allclose(out, [[0.99, 0.7, np.nan, np.nan], [0.99, 0.95, 0.95, np.nan]])
    with pytest.raises(ValueError, match="same shape"):
        ga.best_accuracy_at(frac, acc[:, :2], [0.5])
    frac = np.array([[0.0, 0.5, 0.9], [0.0, 0.6, 0.8]])
    acc = np.array([[0.99, 0.98, 0.5], [0.97, 0.5, 0.96]])
    np.testing.assert_allclose(ga.largest_fraction_within(frac, acc, [0.99, 0.97], 0.02), [0.5, 0.8])
