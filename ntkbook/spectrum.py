"""Spectra of zonal kernels on the sphere and power-law fits.

A zonal kernel ``K(x, y) = kappa(<x, y>)`` on S^{d-1} is diagonalised by the
spherical harmonics (Funk–Hecke theorem; e.g. Atkinson & Han 2012,
*Spherical Harmonics and Approximations on the Unit Sphere*, Thm. 2.22).
The integral operator ``(T f)(x) = E_{y ~ Unif(S^{d-1})} [kappa(<x, y>) f(y)]``
acts on every harmonic of degree k by the eigenvalue

    lambda_k = (|S^{d-2}| / |S^{d-1}|) * int_{-1}^{1} kappa(t) P_k^{(d)}(t) (1 - t^2)^{(d-3)/2} dt,

with ``P_k^{(d)}`` the Legendre (Gegenbauer) polynomial of dimension d
normalised by ``P_k^{(d)}(1) = 1``; the degree-k eigenspace has dimension
``N(d, k)``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import roots_legendre

__all__ = ["legendre_polynomials", "harmonic_dimension", "zonal_eigenvalues",
           "fit_power_law"]


def legendre_polynomials(t, d: int, kmax: int) -> np.ndarray:
    """``P_k^{(d)}(t)`` for k = 0..kmax, normalised to ``P_k^{(d)}(1) = 1``.

    Three-term recurrence (Atkinson & Han 2012, eq. 2.89):
    ``(k + d - 3) P_k = (2k + d - 4) t P_{k-1} - (k - 1) P_{k-2}``, with
    ``P_0 = 1`` and ``P_1 = t``. d = 2 gives Chebyshev ``T_k``, d = 3 the
    classical Legendre polynomials.

    Args:
      t: array of cosines, any shape S.
      d: ambient dimension (sphere S^{d-1}), >= 2.
      kmax: largest degree.

    Returns:
      ``(kmax + 1, *S)`` array.
    """
    t = np.asarray(t, dtype=np.float64)
    out = np.empty((kmax + 1,) + t.shape)
    out[0] = 1.0
    if kmax >= 1:
        out[1] = t
    for k in range(2, kmax + 1):
        out[k] = ((2 * k + d - 4) * t * out[k - 1] - (k - 1) * out[k - 2]) / (k + d - 3)
    return out


def harmonic_dimension(d: int, k: int) -> int:
    """``N(d, k)``: dimension of the degree-k spherical harmonics on S^{d-1}.

    ``N(d, 0) = 1``, ``N(d, k) = (2k + d - 2)/k * binom(k + d - 3, k - 1)``
    (Atkinson & Han 2012, eq. 2.10); N(2, k) = 2, N(3, k) = 2k + 1.
    """
    if k == 0:
        return 1
    return (2 * k + d - 2) * math.comb(k + d - 3, k - 1) // k


def _check_d_kmax(d, kmax):
    if not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an int >= 2, got {d!r}")
    if not isinstance(kmax, (int, np.integer)) or kmax < 0:
        raise ValueError(f"kmax must be an int >= 0, got {kmax!r}")


@lru_cache(maxsize=16)
def _theta_rule(num_nodes: int):
    """Gauss–Legendre nodes/weights mapped to theta in (0, pi); read-only arrays.

    ``scipy.special.roots_legendre`` (Golub–Welsch with asymptotic
    refinements) is O(n^2); numpy's ``leggauss`` solves an O(n^3) eigenproblem.
    """
    nodes, weights = roots_legendre(num_nodes)
    theta = 0.5 * np.pi * (nodes + 1.0)
    weights = 0.5 * np.pi * weights
    theta.flags.writeable = weights.flags.writeable = False
    return theta, weights


def zonal_eigenvalues(kappa, d: int, kmax: int, *, num_nodes: int | None = None) -> np.ndarray:
    """Funk–Hecke eigenvalues ``lambda_0..lambda_kmax`` of a zonal kernel.

    Eigenvalue of ``(T f)(x) = E_{y ~ Unif(S^{d-1})}[kappa(<x, y>) f(y)]`` on
    harmonics of degree k (each with multiplicity ``harmonic_dimension(d, k)``),
    i.e. with respect to the uniform *probability* measure on S^{d-1}.

    Quadrature: the substitution ``t = cos(theta)`` turns the integral into
    ``c_d int_0^pi kappa(cos theta) P_k(cos theta) sin(theta)^{d-2} d theta``,
    ``c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))``, which Gauss–Legendre in
    theta integrates to machine precision for smooth kappa. Unlike
    Gauss–Gegenbauer in t, this also converges fast for kernels with a
    ``sqrt(1 - t)`` kink at t = 1 (ReLU NTK, Laplace), since those are smooth
    functions of theta. kappa is evaluated once, on the grid.

    Args:
      kappa: vectorised map from an array of cosines in [-1, 1] to kernel
        values (numpy or jax).
      d: ambient dimension (sphere S^{d-1}), any d >= 2.
      kmax: largest degree.
      num_nodes: quadrature nodes; default ``max(4 * kmax + 512, 2048)``.

    Returns:
      ``(kmax + 1,)`` float64 array of ``lambda_k``.
    """
    _check_d_kmax(d, kmax)
    num_nodes = num_nodes or max(4 * int(kmax) + 512, 2048)
    theta, weights = _theta_rule(int(num_nodes))
    t = np.cos(theta)
    values = np.asarray(kappa(t), dtype=np.float64)
    if values.shape != t.shape:
        raise ValueError(f"kappa must map a (q,) array to (q,), got shape {values.shape}")
    c_d = math.exp(math.lgamma(d / 2) - math.lgamma((d - 1) / 2)) / math.sqrt(math.pi)
    measure = c_d * weights * np.sin(theta) ** (d - 2)
    return legendre_polynomials(t, d, kmax) @ (measure * values)


def fit_power_law(k, lam):
    """Least-squares fit of ``|lam| ~ prefactor * k^exponent`` in log-log space.

    Args:
      k: ``(n,)`` positive abscissae (degrees, widths, ...), n >= 2.
      lam: ``(n,)`` non-zero values (their absolute value is fitted).

    Returns:
      ``(exponent, prefactor)`` as floats; ``exponent`` is signed (a decay
      gives a negative exponent).
    """
    k = np.asarray(k, dtype=np.float64)
    lam = np.abs(np.asarray(lam, dtype=np.float64))
    if k.shape != lam.shape or k.ndim != 1 or k.size < 2:
        raise ValueError(f"k and lam must be 1-d of the same length >= 2, got {k.shape}, {lam.shape}")
    if np.any(k <= 0) or np.any(lam == 0) or not np.all(np.isfinite(lam)):
        raise ValueError("k must be > 0 and lam non-zero and finite")
    exponent, log_prefactor = np.polyfit(np.log(k), np.log(lam), 1)
    return float(exponent), float(np.exp(log_prefactor))
