"""Tests of ntkbook.linearity against closed forms and dense computations (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import linearity as lin

# Tolerances (float64): Lanczos with 30 steps on a <= 1,000-parameter Hessian is
# exact to round-off once the Krylov space is exhausted, and within ~1e-8 of
# the top eigenvalue otherwise; closed forms are evaluated in float64.
TOL_EXACT = 1e-10
TOL_LANCZOS = 1e-7


def _probe(d, key=0):
    x = jax.random.normal(jax.random.PRNGKey(key), (d,))
    return x / jnp.linalg.norm(x) * jnp.sqrt(d)


def test_relu_hessian_closed_form():
    """One hidden ReLU layer: ||H||_2 = ||x|| / sqrt(d m) exactly."""
    d, m = 5, 16
    x = 2.0 * _probe(d)
    model = nk.mlp(d, m, 1, activation="relu")
    params = model.init_fn(jax.random.PRNGKey(1))
    norm = lin.hessian_norm(model.apply_fn, params, x, key=jax.random.PRNGKey(2))
    assert abs(norm - float(jnp.linalg.norm(x)) / np.sqrt(d * m)) < TOL_LANCZOS


def test_hessian_norm_matches_dense():
    d, m = 3, 6
    x = _probe(d)
    model = nk.mlp(d, m, 2, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(3))
    dense = nk.hessian.dense_hessian(lin.output_fn(model.apply_fn, x), params)
    expected = float(np.max(np.abs(np.linalg.eigvalsh(np.asarray(dense)))))
    got = lin.hessian_norm(model.apply_fn, params, x, key=jax.random.PRNGKey(4), num_iters=60)
    assert abs(got - expected) < TOL_LANCZOS * expected


def test_grad_norm_closed_form():
    """||grad f||^2 = (1/m) sum tanh(h)^2 + (1/m) sum v^2 tanh'(h)^2 ||x||^2 / d."""
    d, m = 4, 7
    x = _probe(d)
    model = nk.mlp(d, m, 1, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(5))
    h = x @ params[0]["W"] / np.sqrt(d)
    v = params[1]["W"][:, 0]
    expected = jnp.sqrt(jnp.mean(jnp.tanh(h) ** 2)
                        + jnp.mean(v**2 * (1 - jnp.tanh(h) ** 2) ** 2) * (x @ x) / d)
    assert abs(lin.grad_norm(model.apply_fn, params, x) - float(expected)) < TOL_EXACT


def test_output_fn_is_hashable_by_value():
    model = nk.mlp(3, 4, 1)
    x = _probe(3)
    a, b = lin.output_fn(model.apply_fn, x), lin.output_fn(model.apply_fn, np.asarray(x))
    assert a == b and hash(a) == hash(b)
    assert a != lin.output_fn(model.apply_fn, 2 * x)
    with pytest.raises(ValueError, match="x must be one input"):
        lin.output_fn(model.apply_fn, jnp.ones((2, 3)))


def test_antisymmetric_is_the_doubling_init():
    """Pair of width m == width-2m MLP with W = [W0, W0], v = [v0; -v0]."""
    d, m = 3, 5
    base = nk.mlp(d, m, 1, activation="tanh")
    pair = lin.antisymmetric(base)
    params = pair.init_fn(jax.random.PRNGKey(6))
    x = jax.random.normal(jax.random.PRNGKey(7), (4, d))
    np.testing.assert_array_equal(pair.apply_fn(params, x), 0.0)
    w0, v0 = params["plus"][0]["W"], params["plus"][1]["W"]
    wide = nk.mlp(d, 2 * m, 1, activation="tanh")
    doubled = [{"W": jnp.concatenate([w0, w0], axis=1)}, {"W": jnp.concatenate([v0, -v0])}]
    moved = jax.tree.map(lambda a: a + 0.1, params)
    moved_wide = [{"W": jnp.concatenate([moved["plus"][0]["W"], moved["minus"][0]["W"]], 1)},
                  {"W": jnp.concatenate([moved["plus"][1]["W"], -moved["minus"][1]["W"]])}]
    np.testing.assert_allclose(wide.apply_fn(doubled, x), 0.0, atol=TOL_EXACT)
    np.testing.assert_allclose(pair.apply_fn(moved, x), wide.apply_fn(moved_wide, x),
                               atol=TOL_EXACT)
    # same tangent kernel at initialisation as the base model
    np.testing.assert_allclose(nk.empirical_ntk(pair.apply_fn, params, x),
                               nk.empirical_ntk(base.apply_fn, params["plus"], x),
                               rtol=TOL_EXACT)


def test_taylor_remainder_closed_forms():
    x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])

    def linear(p, x):
        return (x @ p["w"])[:, None]

    def quadratic(p, x):
        return ((x @ p["w"]) ** 2)[:, None]

    p0, p1 = {"w": jnp.array([0.3, -0.2])}, {"w": jnp.array([1.0, 0.5])}
    np.testing.assert_allclose(lin.taylor_remainder(linear, p0, p1, x), 0.0, atol=TOL_EXACT)
    expected = ((x @ (p1["w"] - p0["w"])) ** 2)[:, None]
    np.testing.assert_allclose(lin.taylor_remainder(quadratic, p0, p1, x), expected,
                               rtol=TOL_EXACT)
    with pytest.raises(ValueError, match="x must be an"):
        lin.taylor_remainder(linear, p0, p1, x[0])


def _small_data(d=4, n=6):
    x = jax.random.normal(jax.random.PRNGKey(8), (n + 1, d))
    x = x / jnp.linalg.norm(x, axis=1, keepdims=True) * jnp.sqrt(d)
    return x[:n], jnp.linspace(-0.5, 0.5, n)[:, None], x[n]


def test_transition_report_relu_exact_and_shapes():
    d = 4
    x_train, y_train, x_probe = _small_data(d)
    report = lin.transition_report(
        lambda m: nk.mlp(d, m, 1, activation="relu"), [8, 16, 32], x_probe,
        key=jax.random.PRNGKey(9), num_seeds=2, x_train=x_train, y_train=y_train,
        train_widths=[16, 32], num_train_seeds=1, num_steps=40, num_checkpoints=2)
    assert report.hessian_norm.shape == report.grad_norm.shape == (2, 3)
    np.testing.assert_allclose(report.hessian_norm * np.sqrt(report.widths), 1.0,
                               rtol=TOL_LANCZOS)
    assert abs(report.slopes.hessian.exponent + 0.5) < TOL_LANCZOS
    assert report.ntk_change.shape == report.linearization_gap.shape == (1, 2)
    np.testing.assert_array_equal(report.train_widths, [16, 32])
    path = report.paths[0]
    assert path.losses.shape == (1, 41) and path.ntk_change.shape == (1, 3)
    # checkpoint 0 is w0: no change, no remainder, no distance
    assert path.ntk_change[0, 0] == 0 and path.distance[0, 0] == 0
    assert path.linearization_gap[0, 0] < TOL_EXACT
    assert np.all(np.diff(path.losses[0]) <= 1e-12)     # eta = n / lambda_max: monotone
    assert report.slopes.ntk_change is not None
    ax = lin.plot_report(report)
    assert ax.get_xlabel() == "width $m$"


def test_train_path_is_reproducible_and_tracks_loss_hessian():
    d = 3
    x_train, y_train, x_probe = _small_data(d, n=5)
    model = nk.mlp(d, 12, 1, activation="tanh")
    params = [model.init_fn(jax.random.PRNGKey(10))]
    kwargs = dict(key=jax.random.PRNGKey(11), num_steps=200, num_checkpoints=2)
    a = lin.train_path(model, params, x_train, y_train, x_probe, **kwargs)
    b = lin.train_path(model, params, x_train, y_train, x_probe, **kwargs)
    for field in a._fields:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.losses[0, -1] < 1e-2 * a.losses[0, 0]
    # near the minimum the residual term vanishes: loss Hessian -> lambda_max(K)/n
    assert abs(a.loss_hessian_norm[0, -1] / a.gauss_newton_norm[0, -1] - 1) < 0.05
    no_lh = lin.train_path(model, params, x_train, y_train, x_probe, loss_hessian=False,
                           **kwargs)
    assert np.isnan(no_lh.loss_hessian_norm).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=[8]), "widths"),
    (dict(widths=[16, 8]), "widths"),
    (dict(num_seeds=0), "num_seeds"),
    (dict(train_widths=[8, 64]), "train_widths"),
    (dict(num_train_seeds=3), "num_train_seeds"),
])
def test_transition_report_validation(kwargs, match):
    d = 3
    x_train, y_train, x_probe = _small_data(d)
    args = dict(widths=[8, 16], num_seeds=2, x_train=x_train, y_train=y_train)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        lin.transition_report(lambda m: nk.mlp(d, m, 1), args.pop("widths"), x_probe,
                              key=jax.random.PRNGKey(0), **args)


def test_train_path_validation():
    d = 3
    x_train, y_train, x_probe = _small_data(d)
    model = nk.mlp(d, 4, 1)
    params = [model.init_fn(jax.random.PRNGKey(0))]
    with pytest.raises(ValueError, match="num_steps"):
        lin.train_path(model, params, x_train, y_train, x_probe, key=jax.random.PRNGKey(0),
                       num_steps=10, num_checkpoints=3)
    with pytest.raises(ValueError, match="report"):
        lin.plot_report("not a report")
