"""ntkbook.data: shapes, norms, separability, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk


def test_sphere_points_have_unit_norm_and_are_reproducible():
    x = nk.data.sphere(50, 5, key=jax.random.PRNGKey(0), radius=2.0)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 2.0, rtol=1e-12)
    np.testing.assert_array_equal(x, nk.data.sphere(50, 5, key=jax.random.PRNGKey(0), radius=2.0))


def test_circle_and_fibonacci_on_the_sphere():
    np.testing.assert_allclose(jnp.linalg.norm(nk.data.circle(12), axis=1), 1.0, rtol=1e-12)
    fib = nk.data.fibonacci_sphere(500)
    np.testing.assert_allclose(jnp.linalg.norm(fib, axis=1), 1.0, rtol=1e-12)
    # near-uniform: the mean of a uniform sample on S^2 is ~0
    assert float(jnp.linalg.norm(fib.mean(axis=0))) < 1e-2


def test_separable_gaussians_margin_and_labels():
    x, y, u = nk.data.separable_gaussians(100, 10, key=jax.random.PRNGKey(1), margin=0.2)
    assert x.shape == (100, 10) and y.shape == (100,)
    assert float(jnp.min(y * (x @ u))) >= 0.2


def test_teacher_regression_shapes():
    xtr, ytr, xte, yte = nk.data.teacher_regression(8, 4, 3, key=jax.random.PRNGKey(2))
    assert xtr.shape == (8, 3) and ytr.shape == (8, 1) and xte.shape == (4, 3) and yte.shape == (4, 1)


def test_digits_two_classes_normalised():
    x, labels = nk.data.digits((0, 1), num_points=40, key=jax.random.PRNGKey(3))
    assert x.shape == (40, 64) and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="key"):
        nk.data.digits((0, 1), num_points=5)


def test_spiral_shapes():
    x, labels = nk.data.spiral(20, 3, key=jax.random.PRNGKey(4))
    assert x.shape == (60, 2) and np.bincount(np.asarray(labels)).tolist() == [20, 20, 20]


def test_mnist1d_is_offline_deterministic_and_leaves_global_rng_alone():
    import random

    np.random.seed(123)
    random.seed(7)
    before = np.random.get_state()[1].copy(), random.getstate()
    x, y, x_test, y_test = nk.data.mnist1d("standard", seed=5, num_samples=200)
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]
    assert x.shape == (160, 40) and x_test.shape == (40, 40) and x.dtype == jnp.float32
    assert set(np.unique(np.asarray(y))) <= set(range(10)) and y.dtype == jnp.int32
    again = nk.data.mnist1d("standard", seed=5, num_samples=200)
    np.testing.assert_array_equal(x, again[0])
    other = nk.data.mnist1d("standard", seed=6, num_samples=200)
    assert not np.allclose(x, other[0])
    easy = nk.data.mnist1d("easy", seed=5, num_samples=200)
    assert easy[0].shape == (160, 40) and not np.allclose(x, easy[0])
    with pytest.raises(ValueError, match="level"):
        nk.data.mnist1d("hardest", seed=0)


def test_digits_are_sklearns_load_digits():
    from sklearn.datasets import load_digits

    reference = load_digits()
    x, labels = nk.data.digits(tuple(range(10)))
    np.testing.assert_array_equal(np.asarray(labels), reference.target)
    expected = reference.data / 16.0
    np.testing.assert_allclose(np.asarray(x), expected / np.linalg.norm(expected, axis=1,
                                                                        keepdims=True), rtol=0)
