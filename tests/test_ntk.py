"""ntkbook.ntk: structured empirical NTK vs dense Jacobians and neural-tangents.

Tolerances (float64, the session default): the structured kernel sums the
same products as ``J1 @ J2.T`` in another order, so they agree to a few ulps
of the kernel scale (1e-12 leaves room for the O(#params) summation length);
in float32 the same argument gives ~1e-6 relative.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk


@pytest.fixture
def setup():
    model = nk.mlp(3, 12, 2, activation="relu", w_std=2**0.5, b_std=0.1)
    params = model.init_fn(jax.random.PRNGKey(0))
    x1 = nk.data.sphere(5, 3, key=jax.random.PRNGKey(1))
    x2 = nk.data.sphere(4, 3, key=jax.random.PRNGKey(2))
    return model, params, x1, x2


def test_empirical_ntk_equals_dense_jacobian_product(setup):
    model, params, x1, x2 = setup
    j1 = nk.ntk.jacobian_matrix(model.apply_fn, params, x1)
    j2 = nk.ntk.jacobian_matrix(model.apply_fn, params, x2)
    np.testing.assert_allclose(nk.empirical_ntk(model.apply_fn, params, x1, x2), j1 @ j2.T,
                               rtol=1e-12, atol=1e-12)


def _dense(apply_fn, params, x1, x2):
    return (nk.ntk.jacobian_matrix(apply_fn, params, x1)
            @ nk.ntk.jacobian_matrix(apply_fn, params, x2).T)


def _shared_weight_model():
    # One matrix used twice (h -> tanh(h W) -> tanh(. W)): not a single dense
    # product, so its Jacobian is contracted plainly.
    def apply_fn(p, x):
        h = jnp.tanh(x @ p["A"] / 2.0)
        h = jnp.tanh(h @ p["W"] / 3.0)
        h = jnp.tanh(h @ p["W"] / 3.0)
        return h @ p["v"] / 3.0

    params = {"A": jax.random.normal(jax.random.PRNGKey(5), (4, 9)),
              "W": jax.random.normal(jax.random.PRNGKey(6), (9, 9)),
              "v": jax.random.normal(jax.random.PRNGKey(7), (9, 1))}
    return apply_fn, params


def _patch_model():
    # The first matrix acts on 2 patches of each input (free axes r = 2) and
    # from the left (W is the lhs of dot_general).
    def apply_fn(p, x):
        patches = x.reshape(x.shape[0], 2, 2)                      # (n, 2, 2)
        h = jnp.tanh(jnp.einsum("ab,npb->npa", p["W"], patches))   # (n, 2, 5)
        return jnp.sum(h.reshape(x.shape[0], -1) @ p["v"], axis=1, keepdims=True)

    params = {"W": jax.random.normal(jax.random.PRNGKey(8), (5, 2)),
              "v": jax.random.normal(jax.random.PRNGKey(9), (10, 3))}
    return apply_fn, params


@pytest.mark.parametrize("name", ["relu_bias", "softplus_out", "resnet", "resnet_fixed_ends",
                                  "shared_weight", "patches", "last_layer"])
def test_empirical_ntk_matches_dense_on_many_models(name):
    x1 = nk.data.sphere(5, 4, key=jax.random.PRNGKey(1))
    x2 = nk.data.sphere(3, 4, key=jax.random.PRNGKey(2))
    if name in ("shared_weight", "patches"):
        apply_fn, params = (_shared_weight_model if name == "shared_weight" else _patch_model)()
    elif name.startswith("resnet"):
        model = nk.resnet(4, 8, 2, alpha=0.5, train_ends=name == "resnet")
        apply_fn, params = model.apply_fn, model.init_fn(jax.random.PRNGKey(0))
    else:
        model = (nk.mlp(4, 10, 2, activation="relu", w_std=2**0.5, b_std=0.1)
                 if name != "softplus_out" else
                 nk.mlp(4, 10, 2, activation="tanh", output_activation="softplus"))
        apply_fn, params = model.apply_fn, model.init_fn(jax.random.PRNGKey(0))
        if name == "last_layer":
            frozen = params[:-1]
            apply_fn, params = (lambda last, x: model.apply_fn(frozen + [last], x)), params[-1]
    for a, b in ((x1, x2), (x1, None)):
        expected = _dense(apply_fn, params, a, a if b is None else b)
        np.testing.assert_allclose(nk.empirical_ntk(apply_fn, params, a, b), expected,
                                   rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_dense_weights_are_factored_and_the_rest_plain():
    model = nk.mlp(4, 10, 2, activation="relu", b_std=0.1)
    params = model.init_fn(jax.random.PRNGKey(0))
    leaves, treedef = jax.tree.flatten(params)
    plan = nk.structured.factorise(model.apply_fn, leaves, treedef, jnp.ones(4))
    shapes = lambda idx: sorted(leaves[i].shape for i in idx)
    assert shapes(i for i, _ in plan.taps.values()) == [(4, 10), (10, 1), (10, 10)]
    assert shapes(plan.rest) == [(1,), (10,), (10,)]                    # the biases
    fixed = nk.resnet(4, 8, 1, alpha=1.0, train_ends=False)
    leaves, treedef = jax.tree.flatten(fixed.init_fn(jax.random.PRNGKey(0)))
    plan = nk.structured.factorise(fixed.apply_fn, leaves, treedef, jnp.ones(4))
    assert len(plan.taps) == 2 and plan.rest == ()      # A and v: stop_gradient, no share


def test_streamed_rest_jacobians_match(setup, monkeypatch):
    # Past JACOBIAN_BYTES the plain parameters go by NTK-vector products in
    # blocks of x2 (here blocks of 2 columns, the last one padded).
    apply_fn, params = _shared_weight_model()
    x1 = nk.data.sphere(5, 4, key=jax.random.PRNGKey(1))
    x2 = nk.data.sphere(3, 4, key=jax.random.PRNGKey(2))
    monkeypatch.setattr(nk.ntk, "JACOBIAN_BYTES", 2 * 81 * 8)
    np.testing.assert_allclose(nk.ntk._ntk(apply_fn, params, x1, x2),
                               _dense(apply_fn, params, x1, x2), rtol=1e-12, atol=1e-12)


def test_empirical_ntk_float32():
    model = nk.mlp(4, 64, 2, activation="relu", w_std=2**0.5, b_std=0.1)
    params = jax.tree.map(lambda a: a.astype(jnp.float32), model.init_fn(jax.random.PRNGKey(0)))
    x = nk.data.sphere(6, 4, key=jax.random.PRNGKey(1)).astype(jnp.float32)
    params64 = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    expected = _dense(model.apply_fn, params64, x.astype(jnp.float64), x.astype(jnp.float64))
    got = nk.empirical_ntk(model.apply_fn, params, x)
    assert got.dtype == jnp.float32
    # float32 rounding over ~4,000-term sums: ~1e-6 of the kernel scale
    np.testing.assert_allclose(got, expected, atol=2e-6 * float(np.abs(expected).max()))


def test_empirical_ntk_memory_does_not_grow_with_params():
    # XLA's scratch memory for K(x, x) on 16 inputs is far below one copy of
    # the 1M parameters (a stored Jacobian would be 16 copies): the weight
    # Jacobians are never formed.
    model = nk.mlp(4, 1024, 2, activation="relu", b_std=0.1)
    params = model.init_fn(jax.random.PRNGKey(0))
    x = nk.data.sphere(16, 4, key=jax.random.PRNGKey(1))
    num_bytes = sum(a.nbytes for a in jax.tree.leaves(params))
    compiled = nk.ntk._ntk.lower(model.apply_fn, params, x, None).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < 0.1 * num_bytes


def test_empirical_ntk_symmetric_psd(setup):
    model, params, x1, _ = setup
    ntk = nk.empirical_ntk(model.apply_fn, params, x1)
    np.testing.assert_allclose(ntk, ntk.T, atol=1e-13)
    assert np.linalg.eigvalsh(np.asarray(ntk)).min() > -1e-10


def test_empirical_ntk_matches_neural_tangents(setup):
    import neural_tangents as nt

    model, params, x1, x2 = setup
    nt_fn = nt.empirical_ntk_fn(model.apply_fn, trace_axes=(), vmap_axes=0,
                                implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION)
    expected = nt_fn(x1, x2, params)[:, :, 0, 0]
    np.testing.assert_allclose(nk.empirical_ntk(model.apply_fn, params, x1, x2), expected,
                               rtol=1e-10)


def test_linearized_gd_mse_is_gd_on_the_linearised_network():
    import neural_tangents as nt

    model = nk.mlp(3, 16, 2, activation="relu", w_std=2**0.5, b_std=0.1)
    params0 = model.init_fn(jax.random.PRNGKey(0))
    x_train, y_train, x_test, _ = nk.data.teacher_regression(6, 4, 3, key=jax.random.PRNGKey(1))
    ntk0 = nk.empirical_ntk(model.apply_fn, params0, x_train)
    lr = x_train.shape[0] / float(jnp.linalg.eigvalsh(ntk0)[-1])
    apply_lin = nt.linearize(model.apply_fn, params0)
    expected = nk.gradient_descent(nk.mse_loss(apply_lin, x_train, y_train), params0,
                                   learning_rate=lr, num_steps=40, record_every=10,
                                   metrics_fn=lambda p: apply_lin(p, x_test)[:, 0])
    got = nk.ntk.linearized_gd_mse(
        ntk0, nk.empirical_ntk(model.apply_fn, params0, x_test, x_train),
        model.apply_fn(params0, x_train), model.apply_fn(params0, x_test), y_train,
        learning_rate=lr, num_steps=40, record_every=10)
    # the same iterates in other coordinates: float64 rounding only
    np.testing.assert_allclose(got.losses, expected.losses, rtol=1e-9)
    np.testing.assert_allclose(got.metrics, expected.metrics, rtol=1e-9, atol=1e-12)


def test_kernel_change():
    a = jnp.eye(3)
    assert float(nk.kernel_change(a, 1.5 * a)) == pytest.approx(0.5)


def test_empirical_ntk_validates_shapes(setup):
    model, params, x1, _ = setup
    with pytest.raises(ValueError, match="x1 and x2"):
        nk.empirical_ntk(model.apply_fn, params, x1, jnp.ones((2, 5)))
