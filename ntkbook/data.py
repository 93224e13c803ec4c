"""Small data sets, generated or shipped with scikit-learn; nothing downloaded.

Every random function takes ``key`` keyword-only (a jax PRNG key), except
``mnist1d``, whose generator (the ``mnist1d`` package) takes an integer ``seed``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["sphere", "circle", "fibonacci_sphere", "teacher_regression",
           "separable_gaussians", "digits", "spiral", "MNIST1D_LEVELS", "mnist1d"]


def sphere(num_points: int, dim: int, *, key, radius: float = 1.0):
    """``(n, d)`` points i.i.d. uniform on the sphere of radius ``radius`` in R^d.

    Normalised Gaussians (Muller 1959).
    """
    if num_points < 1 or dim < 1:
        raise ValueError(f"num_points and dim must be >= 1, got {num_points}, {dim}")
    z = jax.random.normal(key, (num_points, dim))
    return radius * z / jnp.linalg.norm(z, axis=1, keepdims=True)


def circle(num_points: int):
    """``(n, 2)`` equispaced points ``(cos 2 pi j/n, sin 2 pi j/n)`` on S^1."""
    theta = 2 * np.pi * np.arange(num_points) / num_points
    return jnp.asarray(np.stack([np.cos(theta), np.sin(theta)], axis=1))


def fibonacci_sphere(num_points: int):
    """``(n, 3)`` near-uniform Fibonacci-lattice points on S^2 (deterministic)."""
    i = np.arange(num_points) + 0.5
    z = 1 - 2 * i / num_points
    phi = np.pi * (1 + 5 ** 0.5) * i
    r = np.sqrt(1 - z ** 2)
    return jnp.asarray(np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1))


def teacher_regression(num_train: int, num_test: int, dim: int, *, key, noise: float = 0.0):
    """Regression on the sphere S^{d-1} with a smooth non-linear teacher.

    ``y = sin(3 <u, x>) + 0.5 <u', x>^2 + noise * eps`` with unit vectors u, u'.

    Returns:
      ``(x_train (n, d), y_train (n, 1), x_test (m, d), y_test (m, 1))``.
    """
    x_key, u_key, n_key = jax.random.split(key, 3)
    x = sphere(num_train + num_test, dim, key=x_key)
    u = sphere(2, dim, key=u_key)
    y = jnp.sin(3 * x @ u[0]) + 0.5 * (x @ u[1]) ** 2
    y = (y + noise * jax.random.normal(n_key, y.shape))[:, None]
    return x[:num_train], y[:num_train], x[num_train:], y[num_train:]


def separable_gaussians(num_points: int, dim: int, *, key, margin: float = 0.1):
    """Linearly separable binary data: Gaussian points with |<u, x>| >= margin.

    Draws ``x ~ N(0, I_d / d)``-like points (rejection keeps |<u,x>| >= margin)
    and labels ``y = sign(<u, x>)`` in {-1, +1}.

    Returns:
      ``(x (n, d), y (n,), u (d,))``.
    """
    u_key, x_key = jax.random.split(key)
    u = jax.random.normal(u_key, (dim,))
    u = u / jnp.linalg.norm(u)
    z = jax.random.normal(x_key, (8 * num_points + 64, dim))
    keep = np.flatnonzero(np.abs(np.asarray(z @ u)) >= margin)
    if keep.size < num_points:
        raise ValueError(f"margin={margin} too large for dim={dim}")
    x = z[keep[:num_points]]
    return x, jnp.sign(x @ u), u


def _digits_csv() -> str:
    """Path of scikit-learn's ``datasets/data/digits.csv.gz`` (found, not imported)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits data ship with scikit-learn, which is not installed")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")


def digits(classes=(0, 1), *, num_points: int | None = None, key=None):
    """sklearn's 8x8 digits (shipped with scikit-learn), flattened to (n, 64).

    Pixels scaled to [0, 1] then each image normalised to unit norm. The data
    are ``sklearn.datasets.load_digits()``'s, read from the file it reads
    (``_digits_csv``) without importing ``sklearn.datasets``, which costs 3 s.

    Args:
      classes: digit classes to keep.
      num_points: keep this many (a random subset drawn with ``key``).

    Returns:
      ``(x (n, 64), labels (n,))`` with labels the digit values.
    """
    table = np.loadtxt(_digits_csv(), delimiter=",")      # 1797 rows: 64 pixels, digit
    target = table[:, -1].astype(int)
    mask = np.isin(target, classes)
    x, labels = table[mask, :-1] / 16.0, target[mask]
    if num_points is not None:
        if key is None:
            raise ValueError("key is required when num_points is given")
        idx = np.asarray(jax.random.permutation(key, x.shape[0]))[:num_points]
        x, labels = x[idx], labels[idx]
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return jnp.asarray(x), jnp.asarray(labels)


def spiral(num_per_class: int, num_classes: int = 3, *, key, turns: float = 2.0,
           noise: float = 0.05):
    """Interleaved spiral arms in R^2, one per class (a task a linear model fails).

    Arm c: ``r = t``, ``theta = 2 pi (turns * t + c / C)``, t uniform in (0, 1],
    plus Gaussian noise of std ``noise``.

    Returns:
      ``(x (C*n, 2), labels (C*n,))``.
    """
    t_key, n_key = jax.random.split(key)
    t = jax.random.uniform(t_key, (num_classes, num_per_class), minval=1e-3, maxval=1.0)
    c = jnp.arange(num_classes)[:, None]
    theta = 2 * jnp.pi * (turns * t + c / num_classes)
    x = jnp.stack([t * jnp.cos(theta), t * jnp.sin(theta)], axis=-1).reshape(-1, 2)
    x = x + noise * jax.random.normal(n_key, x.shape)
    labels = jnp.repeat(jnp.arange(num_classes), num_per_class)
    return x, labels


# Difficulty levels of MNIST-1D: overrides of mnist1d.data.get_dataset_args().
# "standard" is the published data set (a linear classifier: ~35%); "easy" drops
# the noise and the shear and shifts the digits by at most 12 of the 72 samples
# of the padded signal instead of 48 (a linear classifier: ~84%).
MNIST1D_LEVELS = {
    "easy": {"max_translation": 12, "corr_noise_scale": 0.0, "iid_noise_scale": 0.0,
             "shear_scale": 0.0},
    "standard": {},
}


def mnist1d(level: str = "standard", *, seed: int, num_samples: int = 5000):
    """MNIST-1D (Greydanus & Kobak 2024): 10 classes of 1-D signals of length 40.

    Generated offline by ``mnist1d.data.make_dataset`` (never its download
    path): each digit's 12-point template is padded, scaled, translated, given
    correlated and i.i.d. noise and sheared, then resampled to 40 points; the
    whole set is centred and scaled to unit standard deviation. A linear
    classifier reaches about 32% on the standard level, a CNN about 94%.
    ``level`` selects overrides of the generator's arguments from
    ``MNIST1D_LEVELS``. The generator seeds NumPy's (and Python's) global
    random state; both are saved and restored, so a call leaves them as it
    found them and the same ``seed`` gives the same data.

    Args:
      level: a key of ``MNIST1D_LEVELS``.
      seed: the generator's seed (an int >= 0).
      num_samples: total number of examples (80% train, 20% test).

    Returns:
      ``(x (n, 40), labels (n,), x_test (m, 40), labels_test (m,))``, float32 / int32.
    """
    import random

    if level not in MNIST1D_LEVELS:
        raise ValueError(f"level must be one of {sorted(MNIST1D_LEVELS)}, got {level!r}")
    if not isinstance(num_samples, int) or num_samples < 20:
        raise ValueError(f"num_samples must be an int >= 20, got {num_samples!r}")
    from mnist1d.data import get_dataset_args, make_dataset   # imports matplotlib: lazily

    args = get_dataset_args()
    for name, value in {**MNIST1D_LEVELS[level], "num_samples": num_samples,
                        "seed": int(seed)}.items():
        setattr(args, name, value)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (jnp.asarray(d["x"], jnp.float32), jnp.asarray(d["y"], jnp.int32),
            jnp.asarray(d["x_test"], jnp.float32), jnp.asarray(d["y_test"], jnp.int32))
