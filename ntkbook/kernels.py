"""Closed-form infinite-width kernels as functions of the cosine t = <x, y>.

For unit vectors x, y on S^{d-1} every kernel here is *zonal*,
``K(x, y) = kappa(<x, y>)``, and is evaluated as a vectorised numpy function of
an array ``t`` of cosines in [-1, 1] (any shape; the output has the same
shape). That makes the kernels cheap to tabulate once on a quadrature grid
(``ntkbook.spectrum.zonal_eigenvalues``) and to compare against
neural-tangents' ``stax`` (``ntkbook.infinite.stax_mlp``), which the tests do to
1e-12. The residual network's kernel, built from the same blocks, is in
``ntkbook.resntk``; spectra and their fits are in ``ntkbook.spectrum``.

Building blocks are the arc-cosine kernels of degree 0 and 1 of Cho & Saul
2009 (NeurIPS, "Kernel Methods for Deep Learning"): for a centred
Gaussian pair (u, v) with unit variances and correlation rho,

    E[relu'(u) relu'(v)] = kappa_0(rho) / 2,   kappa_0(rho) = (pi - arccos rho) / pi,
    E[relu(u) relu(v)]   = kappa_1(rho) / 2,
        kappa_1(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / pi.

Input covariance. neural-tangents and ``ntkbook.models`` divide the first
matrix product by sqrt(d) (NTK parameterisation, fan-in d), so for unit-norm
inputs in R^d the input covariance is ``K_0(x, y) = t / d``. The NTKs take
``input_variance = q`` with ``K_0 = q t``: ``q = 1`` is the convention of the
papers (inputs on the unit sphere, ``K_0 = <x, y>``); ``q = 1 / d`` matches the
package's networks. Without biases the ReLU kernels are positively homogeneous
of degree one in q, so q only rescales them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["kappa_0", "kappa_1", "fc_ntk", "laplace", "normalised", "kink_slope", "spikiness",
           "zonal_gram"]


def _cosines(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if np.any(np.abs(t) > 1 + 1e-12) or not np.all(np.isfinite(t)):
        raise ValueError("t must hold cosines in [-1, 1]")
    return np.clip(t, -1.0, 1.0)


def _check_depth(depth) -> int:
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be an int >= 1, got {depth!r}")
    return int(depth)


def _check_positive(name, value) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def kappa_0(t):
    """Arc-cosine kernel of degree 0: ``kappa_0(t) = (pi - arccos t) / pi``.

    ``2 E[relu'(u) relu'(v)]`` for unit-variance Gaussians with correlation t
    (Cho & Saul 2009, arc-cosine kernel of degree 0). ``kappa_0(1) = 1``, ``kappa_0(-1) = 0``.

    Args:
      t: cosines in [-1, 1], any shape.

    Returns:
      array of the shape of ``t``.
    """
    t = _cosines(t)
    return (np.pi - np.arccos(t)) / np.pi


def kappa_1(t):
    """Arc-cosine kernel of degree 1: ``(sqrt(1 - t^2) + (pi - arccos t) t) / pi``.

    ``2 E[relu(u) relu(v)]`` for unit-variance Gaussians with correlation t
    (Cho & Saul 2009, arc-cosine kernel of degree 1). ``kappa_1(1) = 1``, ``kappa_1(-1) = 0``,
    ``kappa_1'(t) = kappa_0(t)``.

    Args:
      t: cosines in [-1, 1], any shape.

    Returns:
      array of the shape of ``t``.
    """
    t = _cosines(t)
    return (np.sqrt(1.0 - t * t) + (np.pi - np.arccos(t)) * t) / np.pi


def fc_ntk(t, depth: int, *, w_std: float = 1.0, b_std: float = 0.0,
           input_variance: float = 1.0):
    """NTK of the ReLU MLP ``ntkbook.models.mlp`` / ``ntkbook.infinite.stax_mlp``.

    Layers ``z_l = w_std W_l h_{l-1} / sqrt(n_{l-1}) + b_std b_l`` (l = 1..L+1),
    ``h_l = relu(z_l)``, NTK parameterisation, every weight and bias trained
    (Jacot et al. 2018, arXiv 1806.07572, Thm. 1; Arora et al. 2019,
    arXiv 1904.11955). With ``s_l = Sigma_l(x, x)`` (the same for
    every x on the sphere) and ``rho_l = Sigma_l(x, y) / s_l``:

        Sigma_1 = w^2 q t + b^2,          Theta_1 = Sigma_1,
        Sigma_{l+1} = w^2 s_l kappa_1(rho_l) / 2 + b^2,
        Theta_{l+1} = Sigma_{l+1} + w^2 Theta_l kappa_0(rho_l) / 2.

    The NTK is ``Theta_{L+1}`` (depth = L hidden layers plus the read-out).

    Args:
      t: cosines in [-1, 1], any shape.
      depth: number of hidden layers L >= 1.
      w_std, b_std: weight and bias scales (``b_std = 0``: no biases).
      input_variance: q with input covariance ``K_0 = q t`` (module docstring).

    Returns:
      NTK values, the shape of ``t``.
    """
    t = _cosines(t)
    depth = _check_depth(depth)
    _check_positive("w_std", w_std)
    _check_positive("input_variance", input_variance)
    if not np.isfinite(b_std) or b_std < 0:
        raise ValueError(f"b_std must be a finite number >= 0, got {b_std!r}")
    w2, b2 = w_std ** 2, b_std ** 2
    sigma, diag = w2 * input_variance * t + b2, w2 * input_variance + b2
    theta = sigma
    for _ in range(depth):
        rho = np.clip(sigma / diag, -1.0, 1.0)
        sigma, diag = w2 * diag * kappa_1(rho) / 2 + b2, w2 * diag / 2 + b2
        theta = sigma + w2 * theta * kappa_0(rho) / 2
    return theta


def laplace(t, *, scale: float = 1.0):
    """Laplace kernel on the unit sphere: ``exp(-c ||x - y||) = exp(-c sqrt(2 - 2t))``.

    Its Funk–Hecke eigenvalues decay like k^-d on S^{d-1}, like the ReLU NTKs
    (Geifman et al. 2020, arXiv 2007.01580; Chen & Xu 2021, arXiv 2009.10683).

    Args:
      t: cosines in [-1, 1], any shape.
      scale: c > 0.

    Returns:
      kernel values, the shape of ``t``.
    """
    t = _cosines(t)
    _check_positive("scale", scale)
    return np.exp(-scale * np.sqrt(np.maximum(2.0 - 2.0 * t, 0.0)))


def normalised(kappa: Callable) -> Callable:
    """The shape ``t -> kappa(t) / kappa(1)`` of a kernel, free of its overall scale.

    Args:
      kappa: vectorised map of cosines to kernel values with ``kappa(1) != 0``.

    Returns:
      a vectorised map of cosines (any shape) to ``kappa(t) / kappa(1)``.
    """
    def shape(t):
        return np.asarray(kappa(t), dtype=np.float64) / float(np.asarray(kappa(np.ones(1)))[0])

    return shape


def kink_slope(kappa: Callable, *, at: float = 1.0, chord: float = 3e-3) -> float:
    """Slope of a kernel's kink in the chord: ``lim_{s -> 0} (kappa(at) - kappa(t_s)) / s``.

    At ``at = 1``, ``s = sqrt(2 - 2t) = ||x - y||`` and ``t_s = 1 - s^2/2``; at
    ``at = -1`` (antipodal inputs), ``s = sqrt(2 + 2t) = ||x + y||`` and
    ``t_s = -1 + s^2/2``. Near ``at`` the kernel is ``kappa(at) - slope * s + O(s^2)``.
    ReLU kernels expand in integer powers of s, so the limit is taken by two
    Richardson steps on ``g(s) = (kappa(at) - kappa(t_s)) / s`` at s, s/2, s/4
    (error O(s^3)). The cosines ``t_s`` are rounded to float64, and g divides
    by the chord of the rounded t (exact to an ulp). Accuracy: deep kernels
    vary on the scale s ~ 1/L, so the truncation error grows like (L s)^3,
    while rounding in the recursions near the end costs ~1e-16 / s^2; s = 3e-3
    keeps both below ~1e-5 relative up to L = 128 (compared with the closed
    forms in the tests).

    Args:
      kappa: vectorised map of cosines to kernel values.
      at: the end of [-1, 1] where the kink is, 1.0 or -1.0.
      chord: largest chord s used, in (0, 0.1].

    Returns:
      the slope (a float).
    """
    if not 0 < chord <= 0.1:
        raise ValueError(f"chord must be in (0, 0.1], got {chord!r}")
    if at not in (1.0, -1.0):
        raise ValueError(f"at must be 1.0 or -1.0, got {at!r}")
    t = at * (1.0 - (chord / np.array([1.0, 2.0, 4.0])) ** 2 / 2)
    values = np.asarray(kappa(np.concatenate([[at], t])), dtype=np.float64)
    g = (values[0] - values[1:]) / np.sqrt(2.0 - 2.0 * at * t)
    g1 = 2 * g[1:] - g[:-1]
    return float((4 * g1[1] - g1[0]) / 3)


def spikiness(kappa: Callable, *, chord: float = 3e-3) -> float:
    """Slope of the kink at t = 1: ``c = lim_{t -> 1} (1 - kappa(t)/kappa(1)) / sqrt(2 - 2t)``.

    ``s = sqrt(2 - 2t) = ||x - y||`` is the chord between unit vectors, so near
    the diagonal ``kappa(t) / kappa(1) ~ 1 - c ||x - y||``: the Laplace kernel
    ``exp(-c ||x - y||)`` has spikiness c, and a large c is a sharp peak.
    ``c = kink_slope(kappa) / kappa(1)`` (same extrapolation and accuracy).

    Args:
      kappa: vectorised map of cosines to kernel values, ``kappa(1) > 0``.
      chord: largest chord s used, in (0, 0.1].

    Returns:
      the spikiness c (a float).
    """
    value = float(np.asarray(kappa(np.ones(1)), dtype=np.float64)[0])
    if value <= 0:
        raise ValueError(f"kappa(1) must be > 0, got {value!r}")
    return kink_slope(kappa, chord=chord) / value


def zonal_gram(kappa: Callable, x1, x2=None) -> np.ndarray:
    """Gram matrix ``K[i, j] = kappa(<x1_i, x2_j>)`` of unit vectors.

    Cosines are clipped to [-1, 1]; when ``x2`` is None the diagonal cosines are
    set to exactly 1 (rounding would otherwise leave ``1 - 1e-16``, which the
    ``sqrt(1 - t)`` kink of ReLU kernels turns into a 1e-8 error).

    Args:
      kappa: vectorised map of cosines to kernel values.
      x1: ``(n1, d)`` unit vectors.
      x2: ``(n2, d)`` unit vectors; ``x1`` when None.

    Returns:
      ``(n1, n2)`` numpy array.
    """
    x1 = np.asarray(x1, dtype=np.float64)
    same = x2 is None
    x2 = x1 if same else np.asarray(x2, dtype=np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"x1 and x2 must be (n, d) arrays with the same d, "
                         f"got {x1.shape}, {x2.shape}")
    norms = np.concatenate([np.linalg.norm(x1, axis=1), np.linalg.norm(x2, axis=1)])
    if np.max(np.abs(norms - 1)) > 1e-10:
        raise ValueError("x1 and x2 must hold unit vectors")
    t = np.clip(x1 @ x2.T, -1.0, 1.0)
    if same:
        np.fill_diagonal(t, 1.0)
    return np.asarray(kappa(t), dtype=np.float64)
