"""Tests for ntkbook.pruning: gates, proximal step, training, network path length.

Tolerances (float64, session runs with JAX_ENABLE_X64=1): closed forms
(prox, APL) are exact up to 1e-12.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import pruning as pr

EXACT = 1e-12


# ------------------------------------------------------------------- units
def test_gated_act_endpoints_and_prelu_form():
    z = jnp.linspace(-3, 3, 13)
    np.testing.assert_allclose(pr.gated_act(z, jnp.ones(13)), jax.nn.relu(z), atol=EXACT)
    np.testing.assert_allclose(pr.gated_act(z, jnp.zeros(13)), z, atol=EXACT)
    a = 0.3  # PReLU with negative slope a has gate s = 1 - a
    prelu = jnp.where(z > 0, z, a * z)
    np.testing.assert_allclose(pr.gated_act(z, jnp.full(13, 1 - a)), prelu, atol=EXACT)


def test_soft_threshold_is_the_prox_of_l1():
    s = jnp.array([-2.0, -0.3, -0.1, 0.0, 0.05, 0.2, 1.5])
    t = 0.2
    out = pr.soft_threshold(s, t)
    np.testing.assert_allclose(out, [-1.8, -0.1, 0.0, 0.0, 0.0, 0.0, 1.3], atol=EXACT)
    # closed form = argmin over a fine grid of (1/2)(u - s)^2 + t |u|
    grid = jnp.linspace(-3, 3, 60001)
    obj = 0.5 * (grid[None, :] - s[:, None]) ** 2 + t * jnp.abs(grid[None, :])
    np.testing.assert_allclose(out, grid[jnp.argmin(obj, axis=1)], atol=1e-4)


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("factory", [pr.gated_mlp, pr.gated_resmlp])
def test_shapes_and_init_is_relu(factory):
    model = factory(2, 8, 3, 4)
    params = model.init_fn(jax.random.PRNGKey(0))
    assert len(params["s"]) == 3 and all(s.shape == (8,) for s in params["s"])
    assert all(bool(jnp.all(s == 1)) for s in params["s"])
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 2))
    assert model.apply_fn(params, x).shape == (5, 4)
    assert float(pr.fraction_linear(params)) == 0.0
    assert float(pr.fraction_linear(pr.linear_params(params))) == 1.0


@pytest.mark.parametrize("bad", [dict(width=0), dict(depth=-1), dict(num_classes=1.5)])
def test_model_validation(bad):
    kwargs = dict(in_dim=2, width=4, depth=2, num_classes=3) | bad
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        pr.gated_mlp(**kwargs)


def test_linear_network_is_affine():
    model = pr.gated_mlp(3, 6, 3, 2)
    params = pr.linear_params(model.init_fn(jax.random.PRNGKey(0)))
    f = lambda x: model.apply_fn(params, x[None])[0]
    x, y = jnp.ones(3), jnp.arange(3.0)
    np.testing.assert_allclose(f(0.3 * x + 0.7 * y), 0.3 * f(x) + 0.7 * f(y), atol=EXACT)


# ---------------------------------------------------------------- training
def test_train_gated_batched_prior_linearises_and_masks_hold():
    model = pr.gated_mlp(2, 8, 2, 3)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = jax.vmap(model.init_fn)(keys)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 2))
    labels = (x[:, 0] > 0).astype(jnp.int32)
    masks = [jnp.ones_like(s).at[2].set(0.0) for s in params["s"]]
    out, losses = pr.train_gated(model.apply_fn, params, x, labels, keys=keys,
                                 lams=jnp.array([0.0, 0.1, 100.0]), num_steps=20,
                                 batch_size=16, masks=masks)
    assert losses.shape == (3, 20)
    frac = np.asarray(pr.fraction_linear(out))
    assert frac[2] == 1.0 and frac[0] < 1.0          # a huge prior makes every unit linear
    assert all(bool(jnp.all(s[2] == 0)) for s in out["s"])   # masked units stay linear
    assert pr.accuracy(model.apply_fn, out, x, labels).shape == (3,)


def test_units_pruned_by_the_prior_stay_linear_in_recovery():
    """A huge prior for 5 steps zeroes every gate; 30 more steps without it keep them at 0.

    Without any prior, gates started at 0 are free to move (nothing is pruned).
    """
    model = pr.gated_mlp(2, 8, 2, 3)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    params = jax.vmap(model.init_fn)(keys)
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(jnp.int32)
    out, _ = pr.train_gated(model.apply_fn, params, x, labels, keys=keys, lams=jnp.array([100.0, 0.0]),
                            num_steps=35, prior_steps=5, batch_size=16, gate_lr=0.5)
    frac = np.asarray(pr.fraction_linear(out))
    assert frac[0] == 1.0 and frac[1] < 0.5
    zero = pr.linear_params(params)
    out, _ = pr.train_gated(model.apply_fn, zero, x, labels, keys=keys, lams=jnp.zeros(2),
                            num_steps=30, batch_size=16, gate_lr=0.5)
    assert np.all(np.asarray(pr.fraction_linear(out)) < 1.0)


def test_train_gated_validation():
    model = pr.gated_mlp(2, 4, 1, 2)
    params = jax.vmap(model.init_fn)(jax.random.split(jax.random.PRNGKey(0), 1))
    x, y = jnp.zeros((4, 2)), jnp.zeros(4, dtype=jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    with pytest.raises(ValueError, match="num_steps"):
        pr.train_gated(model.apply_fn, params, x, y, keys=keys, lams=[0.0], num_steps=0)
    with pytest.raises(ValueError, match="lams"):
        pr.train_gated(model.apply_fn, params, x, y, keys=keys, lams=[-1.0], num_steps=1)


# ------------------------------------------------------- helpers on results
def test_prox_gate_closed_form():
    u = jnp.array([-0.5, 0.05, 0.5, 1.05, 2.0])
    np.testing.assert_allclose(pr.prox_gate(u, 0.1), [0.0, 0.0, 0.4, 0.95, 1.0], atol=EXACT)
    grid = jnp.linspace(0, 1, 100001)
    obj = 0.5 * (grid[None, :] - u[:, None]) ** 2 + 0.1 * grid[None, :]
    np.testing.assert_allclose(pr.prox_gate(u, 0.1), grid[jnp.argmin(obj, axis=1)], atol=1e-5)


def test_best_accuracy_at():
    frac = np.array([[0.0, 0.4, 0.8], [0.1, 0.6, 0.9]])
    acc = np.array([[0.99, 0.98, 0.7], [0.99, 0.9, 0.95]])
    out = pr.best_accuracy_at(frac, acc, [0.0, 0.5, 0.85, 0.95])
    np.testing.assert_allclose(out, [[0.99, 0.7, np.nan, np.nan], [0.99, 0.95, 0.95, np.nan]])


def test_network_path_length_and_layer_counts():
    model = pr.gated_mlp(2, 4, 3, 3)
    params = model.init_fn(jax.random.PRNGKey(0))
    gates = [jnp.array([1.0, 0, 0, 0]), jnp.zeros(4), jnp.ones(4)]
    params = {**params, "s": gates}
    assert pr.network_path_length(model, params) == pytest.approx(1 / 4 + 0 + 1)
    np.testing.assert_array_equal(pr.nonlinear_per_layer(params), [1, 0, 4])
    batched = pr.init_batch(model, jax.random.split(jax.random.PRNGKey(1), 2), dtype=jnp.float32)
    assert batched["s"][0].dtype == jnp.float32
    np.testing.assert_allclose(pr.network_path_length(model, batched), [3.0, 3.0])
    res = pr.gated_resmlp(2, 4, 2, 3)
    assert pr.network_path_length(res, res.init_fn(jax.random.PRNGKey(0))) == pytest.approx(1.0)


def test_largest_fraction_within_and_select_run():
    frac = np.array([[0.0, 0.5, 0.9], [0.0, 0.6, 0.8]])
    acc = np.array([[0.99, 0.98, 0.5], [0.97, 0.5, 0.96]])
    np.testing.assert_allclose(pr.largest_fraction_within(frac, acc, [0.99, 0.97], 0.02), [0.5, 0.8])
    tree = {"a": jnp.arange(6.0).reshape(3, 2)}
    np.testing.assert_allclose(pr.select_run(tree, 1)["a"], [2.0, 3.0])
