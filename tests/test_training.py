"""ntkbook.training: compiled GD equals a Python loop; closed-form linear regression."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ntkbook as nk


def _problem():
    x = jax.random.normal(jax.random.PRNGKey(0), (10, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.1
    apply_fn = lambda p, x: (x @ p["w"] + p["b"])[:, None]
    return apply_fn, x, y, {"w": jnp.zeros(3), "b": jnp.zeros(())}


def test_gradient_descent_equals_python_loop():
    apply_fn, x, y, params = _problem()
    loss = nk.mse_loss(apply_fn, x, y)
    result = nk.gradient_descent(loss, params, learning_rate=0.1, num_steps=20)
    p, losses = params, []
    for _ in range(20):
        losses.append(loss(p))
        p = jax.tree.map(lambda a, g: a - 0.1 * g, p, jax.grad(loss)(p))
    np.testing.assert_allclose(result.losses[:-1], jnp.array(losses), rtol=1e-12)
    np.testing.assert_allclose(result.params["w"], p["w"], rtol=1e-12)
    assert result.losses[-1] == pytest.approx(float(loss(p)), rel=1e-12)


def test_gradient_descent_linear_regression_converges_to_least_squares():
    apply_fn, x, y, params = _problem()
    result = nk.gradient_descent(nk.mse_loss(apply_fn, x, y), params, learning_rate=0.3,
                                 num_steps=2000)
    design = jnp.hstack([x, jnp.ones((10, 1))])
    solution = jnp.linalg.lstsq(design, y)[0]
    np.testing.assert_allclose(result.params["w"], solution[:3], atol=1e-8)


def test_train_with_optax_and_metrics():
    apply_fn, x, y, params = _problem()
    result = nk.train(nk.mse_loss(apply_fn, x, y), params, optax.adam(0.05), num_steps=40,
                      record_every=10, metrics_fn=lambda p: {"norm": jnp.linalg.norm(p["w"])})
    assert result.losses.shape == (41,)
    assert result.metrics["norm"].shape == (5,)
    assert float(result.metrics["norm"][0]) == 0.0
    assert result.losses[-1] < result.losses[0]


def test_train_records_metrics_at_every_record_step_and_traces_them_once():
    # metrics at steps 0, r, ..., T are those of the parameters after that many
    # steps, and the same losses as a run without metrics; metrics_fn is traced
    # once (one compiled copy in the program).
    apply_fn, x, y, params = _problem()
    loss, traces = nk.mse_loss(apply_fn, x, y), []

    def metrics_fn(p):
        traces.append(1)
        return {"w": p["w"], "loss": loss(p)}

    result = nk.train(loss, params, optax.adam(0.05), num_steps=30, record_every=10,
                      metrics_fn=metrics_fn)
    assert len(traces) == 1
    plain = nk.train(loss, params, optax.adam(0.05), num_steps=30)
    np.testing.assert_array_equal(result.losses, plain.losses)
    for i, steps in enumerate((0, 10, 20, 30)):
        p = nk.train(loss, params, optax.adam(0.05), num_steps=steps).params if steps else params
        np.testing.assert_allclose(result.metrics["w"][i], p["w"], rtol=1e-12)
        np.testing.assert_allclose(result.metrics["loss"][i], result.losses[steps], rtol=1e-12)


def test_train_compiles_once_under_the_callers_jit_and_vmaps_over_seeds():
    apply_fn, x, y, params = _problem()
    traces = []

    @jax.jit
    def run(scale, x, y):
        traces.append(1)
        p = jax.tree.map(lambda a: a + scale, params)
        return nk.gradient_descent(nk.mse_loss(apply_fn, x, y), p, learning_rate=0.1,
                                   num_steps=10).losses[-1]

    first = run(0.0, x, y)
    second = run(0.0, 2 * x, y)                       # new data: same compiled program
    assert len(traces) == 1
    assert float(second) != float(first)
    batched = jax.vmap(run, in_axes=(0, None, None))(jnp.array([0.0, 0.5]), x, y)
    np.testing.assert_allclose(batched[0], first, rtol=1e-12)


def test_mse_loss_sums_over_outputs():
    x = jnp.ones((4, 2))
    apply_fn = lambda p, x: x @ p                     # (n, 2) outputs
    y = jnp.zeros((4, 2))
    assert float(nk.mse_loss(apply_fn, x, y)(jnp.eye(2))) == pytest.approx(0.5 * 8 / 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_steps=0), "num_steps"),
    (dict(num_steps=10, record_every=3), "record_every"),
    (dict(num_steps=10, learning_rate=0.0), "learning_rate"),
])
def test_validation(kwargs, match):
    apply_fn, x, y, params = _problem()
    kwargs = {"learning_rate": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        nk.gradient_descent(nk.mse_loss(apply_fn, x, y), params, **kwargs)


def test_gradient_descent_vmaps_over_learning_rates():
    apply_fn, x, y, params = _problem()
    loss = nk.mse_loss(apply_fn, x, y)
    run = lambda lr: nk.gradient_descent(loss, params, learning_rate=lr, num_steps=5).losses[-1]
    batched = jax.vmap(run)(jnp.array([0.05, 0.1]))
    np.testing.assert_allclose(batched, [run(0.05), run(0.1)], rtol=1e-12)
