"""Spectra of zonal kernels on the sphere and power-law fits.

A zonal kernel ``K(x, y) = kappa(<x, y>)`` on S^{d-1} is diagonalised by the
spherical harmonics (Funk–Hecke theorem; e.g. Atkinson & Han 2012,
*Spherical Harmonics and Approximations on the Unit Sphere*, Thm. 2.22).
The integral operator ``(T f)(x) = E_{y ~ Unif(S^{d-1})} [kappa(<x, y>) f(y)]``
acts on every harmonic of degree k by the eigenvalue

    lambda_k = (|S^{d-2}| / |S^{d-1}|) * int_{-1}^{1} kappa(t) P_k^{(d)}(t) (1 - t^2)^{(d-3)/2} dt,

with ``P_k^{(d)}`` the Legendre (Gegenbauer) polynomial of dimension d
normalised by ``P_k^{(d)}(1) = 1``; the degree-k eigenspace has dimension
``N(d, k)``. A kernel with a square-root kink at t = 1 (ReLU NTKs, Laplace)
has ``lambda_k ~ C Gamma(k - 1/2) / Gamma(k + d - 1/2) ~ C k^-d``
(``kink_constant``, ``asymptotic_ratio``, ``parity_tail``); power-law fits
(``fit_power_law``, ``parity_exponents``) and Gram-matrix blocks
(``eigenvalue_blocks``) are the empirical counterparts.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.special import poch, roots_legendre

__all__ = ["legendre_polynomials", "harmonic_dimension", "zonal_eigenvalues",
           "fit_power_law", "ParityExponents", "parity_exponents", "eigenvalue_blocks",
           "kink_constant", "asymptotic_ratio", "ParityTail", "parity_tail"]


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


class ParityExponents(NamedTuple):
    """Power-law exponents fitted separately on even and odd degrees.

    ``odd`` is None when the odd eigenvalues vanish (to ``rtol``) over the range.
    """

    even: float
    odd: float | None


def parity_exponents(lam, *, kmin: int, kmax: int, rtol: float = 1e-10) -> ParityExponents:
    """Fit ``lambda_k ~ C k^exponent`` over kmin <= k <= kmax, per parity of k.

    Zonal kernels can treat even and odd degrees differently (the two-layer
    ReLU NTK without bias has ``lambda_k = 0`` for odd k >= 3; Bietti & Mairal
    2019, arXiv 1905.12173), so a single fit through both parities
    can be biased. Odd degrees whose |lambda_k| are all below
    ``rtol * max |lambda|`` count as vanishing.

    Args:
      lam: ``(K,)`` eigenvalues ``lambda_0..lambda_{K-1}``.
      kmin, kmax: fitted range, ``1 <= kmin``, ``kmin + 3 <= kmax < K``.
      rtol: threshold for "vanishing".

    Returns:
      ``ParityExponents(even, odd)``.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim != 1 or not (1 <= kmin and kmin + 3 <= kmax < lam.size):
        raise ValueError(f"need 1 <= kmin, kmin + 3 <= kmax < len(lam); got kmin={kmin}, "
                         f"kmax={kmax}, len(lam)={lam.size}")
    k = np.arange(kmin, kmax + 1)
    even, odd = k[k % 2 == 0], k[k % 2 == 1]
    exponent_even = fit_power_law(even, lam[even])[0]
    if np.all(np.abs(lam[odd]) < rtol * np.max(np.abs(lam))):
        return ParityExponents(exponent_even, None)
    return ParityExponents(exponent_even, fit_power_law(odd, lam[odd])[0])


def eigenvalue_blocks(eigenvalues, d: int, kmax: int):
    """Split sorted Gram-matrix eigenvalues into the harmonic blocks of degree 0..kmax.

    For a zonal kernel and n near-uniform points on S^{d-1}, the eigenvalues of
    ``K / n`` approximate the Funk–Hecke ``lambda_k``, each repeated
    ``N(d, k)`` times (``harmonic_dimension``). When ``lambda_k`` decreases with
    k, the descending eigenvalues come in consecutive blocks of sizes
    ``N(d, 0), N(d, 1), ...``.

    Args:
      eigenvalues: ``(n,)`` eigenvalues of ``K / n`` (any order).
      d: ambient dimension.
      kmax: last degree to take.

    Returns:
      ``(means, spreads)``, each ``(kmax + 1,)``: block means and relative
      spreads ``(max - min) / mean``.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    sizes = [harmonic_dimension(d, k) for k in range(kmax + 1)]
    if sum(sizes) > lam.size:
        raise ValueError(f"kmax={kmax} needs {sum(sizes)} eigenvalues, got {lam.size}")
    edges = np.cumsum([0] + sizes)
    blocks = [lam[a:b] for a, b in zip(edges[:-1], edges[1:])]
    means = np.array([b.mean() for b in blocks])
    spreads = np.array([(b.max() - b.min()) / b.mean() for b in blocks])
    return means, spreads


def kink_constant(d: int) -> float:
    """``C_d``: the Funk–Hecke eigenvalues of the kink ``kappa(t) = -||x - y|| = -sqrt(2 - 2t)``.

    For every k >= 1 on S^{d-1},

        lambda_k = C_d Gamma(k - 1/2) / Gamma(k + d - 1/2),   C_d = 2^(d-2) Gamma(d/2)^2 / pi,

    from ``int (1-t)^nu P_k^{(d)}(t) (1-t^2)^((d-3)/2) dt`` being proportional to
    ``(-nu)_k / (nu + d - 1)_k`` (Pochhammer symbols; Rodrigues' formula,
    Atkinson & Han 2012, Prop. 2.26) at nu = 1/2. ``Gamma(k - 1/2) / Gamma(k + d - 1/2)
    ~ k^-d``. A kernel with ``kappa(t) / kappa(1) = 1 - c ||x - y|| + O(||x - y||^2)``,
    smooth at t = -1, therefore has ``lambda_k / kappa(1) ~ c C_d Gamma(k - 1/2) /
    Gamma(k + d - 1/2)`` (terms ``||x - y||^j`` with even j are polynomials in t,
    odd j >= 3 decay faster by k^-(j-1)). A kink at t = -1 of slope c' in
    ``||x + y||`` adds ``(-1)^k c' C_d`` to the constant. C_2 = 1/pi, C_3 = 1/2.
    """
    _check_d_kmax(d, 0)
    return 2.0 ** (d - 2) * math.gamma(d / 2) ** 2 / math.pi


def asymptotic_ratio(lam, d: int) -> np.ndarray:
    """``r_k = lambda_k Gamma(k + d - 1/2) / Gamma(k - 1/2)``, which tends to a constant for a kink.

    For a kernel with a square-root kink (``kink_constant``),
    ``r_k = C (1 + b / ((k - 3/2)(k + d - 1/2)) + O(k^-4))`` separately on even
    and odd k, with constants ``C_even, C_odd`` (the ends t = 1 and t = -1
    add and subtract). Belfer et al. 2021 (arXiv 2104.03093) prove the
    ``k^-d`` decay for the ResNTK; this ratio is its exact form.

    Args:
      lam: ``(K,)`` eigenvalues ``lambda_0..lambda_{K-1}`` on S^{d-1}.
      d: ambient dimension, >= 2.

    Returns:
      ``(K,)`` array ``r_k`` (``r_0 = -lambda_0 Gamma(d - 1/2) / (2 sqrt(pi))`` is included).
    """
    lam = np.asarray(lam, dtype=np.float64)
    _check_d_kmax(d, lam.size)
    return lam * poch(np.arange(lam.size) - 0.5, d)


class ParityTail(NamedTuple):
    """Tail values of ``asymptotic_ratio`` per parity and their largest relative deviations."""

    constant_even: float
    constant_odd: float
    spread_even: float
    spread_odd: float


def parity_tail(lam, d: int, *, kmin: int) -> ParityTail:
    """Constants and flatness of ``asymptotic_ratio`` over ``kmin <= k <= K - 1``, per parity.

    The constant of a parity is the ratio at the largest degree of that
    parity; its spread is ``max_k |r_k / constant - 1|`` over the degrees of
    that parity in the range.

    Args:
      lam: ``(K,)`` eigenvalues on S^{d-1}.
      d: ambient dimension.
      kmin: first degree of the range, ``1 <= kmin <= K - 2`` (both parities in it).

    Returns:
      ``ParityTail(constant_even, constant_odd, spread_even, spread_odd)``.
    """
    r = asymptotic_ratio(lam, d)
    if not 1 <= kmin <= r.size - 2:
        raise ValueError(f"need 1 <= kmin <= len(lam) - 2, got kmin={kmin}, len(lam)={r.size}")
    out = []
    for parity in (0, 1):
        k = np.arange(kmin, r.size)
        ratios = r[k[k % 2 == parity]]
        out.append((float(ratios[-1]), float(np.max(np.abs(ratios / ratios[-1] - 1)))))
    return ParityTail(out[0][0], out[1][0], out[0][1], out[1][1])
