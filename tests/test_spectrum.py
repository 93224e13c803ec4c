"""Tests for ntkbook.spectrum: Funk–Hecke eigenvalues against closed forms.

Tolerances (float64):
  * 1e-13 relative to lambda_0 for polynomial and exponential kernels: the
    theta-substituted Gauss–Legendre rule integrates these exactly or to
    machine precision; what remains is summation rounding (a few ulps of
    kappa's size times the number of nodes' worth of cancellation).
  * 1e-12 for the power-law fit of exact power laws (log/polyfit rounding).
Every call passes ``num_nodes`` explicitly: the closed forms below converge
with far fewer nodes than the default (>= 2048).
"""
import math

import numpy as np
import pytest
from scipy.special import eval_gegenbauer, eval_legendre, gamma, iv, spherical_in

from ntkbook import spectrum

TOL = 1e-13


def _assert_relative_where_large(lam, ref):
    """Relative error 1e-9 where lambda_k > 1e-4 lambda_0: the absolute error
    allowed above (TOL * lambda_0 = 1e-13 lambda_0; ~3e-14 lambda_0 is seen)
    then costs at most 1e-9 relative."""
    big = ref > 1e-4 * ref[0]
    np.testing.assert_allclose(lam[big], ref[big], rtol=1e-9)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 7])
def test_legendre_normalised_to_one_at_t_equal_one(d):
    p = spectrum.legendre_polynomials(np.array([1.0]), d, 12)
    np.testing.assert_allclose(p[:, 0], 1.0, rtol=1e-14)


def test_legendre_matches_chebyshev_legendre_and_gegenbauer():
    theta = np.linspace(0, np.pi, 17)
    t = np.cos(theta)
    k = np.arange(11)[:, None]
    np.testing.assert_allclose(spectrum.legendre_polynomials(t, 2, 10), np.cos(k * theta), atol=1e-13)
    np.testing.assert_allclose(spectrum.legendre_polynomials(t, 3, 10), eval_legendre(k, t), atol=1e-13)
    # d = 5: Gegenbauer C_k^{(3/2)}(t) / C_k^{(3/2)}(1)
    ref = eval_gegenbauer(k, 1.5, t) / eval_gegenbauer(k, 1.5, 1.0)
    np.testing.assert_allclose(spectrum.legendre_polynomials(t, 5, 10), ref, atol=1e-13)


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
def test_harmonic_dimension_counts_polynomials(d):
    # harmonics of degree <= K span the polynomials of degree <= K on the
    # sphere: dim = C(K+d-1, d-1) + C(K+d-2, d-1).
    for big_k in range(6):
        total = sum(spectrum.harmonic_dimension(d, k) for k in range(big_k + 1))
        assert total == math.comb(big_k + d - 1, d - 1) + math.comb(big_k + d - 2, d - 1)
    assert spectrum.harmonic_dimension(3, 4) == 9 and spectrum.harmonic_dimension(2, 7) == 2


@pytest.mark.parametrize("d", [2, 3, 5])
def test_polynomial_kernel_has_finite_spectrum_of_one_parity(d):
    # kappa(t) = t^3 + 0.5 t: odd, degree 3, so lambda_k = 0 for every even k
    # and for k > 3.
    lam = spectrum.zonal_eigenvalues(lambda t: t ** 3 + 0.5 * t, d, 10, num_nodes=64)
    zero = [0, 2, 4, 5, 6, 7, 8, 9, 10]
    np.testing.assert_allclose(lam[zero], 0.0, atol=TOL)
    assert lam[1] > 0.1 and lam[3] > 1e-3


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_sum_rule_for_polynomial(d):
    # kappa(1) = sum_k N(d, k) lambda_k (the addition theorem at x = y).
    def kappa(t):
        return 1.0 + 0.3 * t + 2.0 * t ** 2 - 0.7 * t ** 4 + 0.1 * t ** 5

    lam = spectrum.zonal_eigenvalues(kappa, d, 8, num_nodes=64)
    total = sum(spectrum.harmonic_dimension(d, k) * lam[k] for k in range(9))
    assert abs(total - kappa(1.0)) < 1e-12
    np.testing.assert_allclose(lam[6:], 0.0, atol=TOL)


def test_exp_kernel_d3_is_modified_spherical_bessel():
    # e^t = sum_k (2k + 1) i_k(1) P_k(t)  =>  lambda_k = i_k(1).
    lam = spectrum.zonal_eigenvalues(np.exp, 3, 20, num_nodes=128)
    ref = spherical_in(np.arange(21), 1.0)
    assert np.max(np.abs(lam - ref)) < TOL * ref[0]
    _assert_relative_where_large(lam, ref)


def test_exp_kernel_d2_is_modified_bessel():
    # e^{cos theta} = I_0(1) + 2 sum_k I_k(1) cos(k theta)  =>  lambda_k = I_k(1).
    lam = spectrum.zonal_eigenvalues(np.exp, 2, 20, num_nodes=128)
    ref = iv(np.arange(21), 1.0)
    assert np.max(np.abs(lam - ref)) < TOL * ref[0]
    _assert_relative_where_large(lam, ref)


@pytest.mark.parametrize("d", [4, 5])
@pytest.mark.parametrize("s", [1.0, 3.0])
def test_exp_kernel_general_d(d, s):
    # e^{s t}: lambda_k = Gamma(d/2) (2/s)^nu I_{k+nu}(s), nu = (d - 2)/2
    # (Gegenbauer expansion of the plane wave).
    nu = (d - 2) / 2
    lam = spectrum.zonal_eigenvalues(lambda t: np.exp(s * t), d, 20, num_nodes=128)
    ref = gamma(d / 2) * (2 / s) ** nu * iv(np.arange(21) + nu, s)
    assert np.max(np.abs(lam - ref)) < TOL * ref[0]
    _assert_relative_where_large(lam, ref)


def test_kink_kernel_converges_with_few_nodes():
    # The Laplace kernel exp(-sqrt(2 - 2t)) has a sqrt(1 - t) kink at t = 1
    # but is smooth in theta: 256 and 512 nodes agree to rounding for k <= 128.
    def kappa(t):
        return np.exp(-np.sqrt(np.maximum(2 - 2 * t, 0.0)))

    a = spectrum.zonal_eigenvalues(kappa, 3, 128, num_nodes=256)
    b = spectrum.zonal_eigenvalues(kappa, 3, 128, num_nodes=512)
    assert np.max(np.abs(a - b)) < 1e-12 * a[0]


@pytest.mark.parametrize("exponent, prefactor", [(-2.0, 3.0), (-3.5, 0.2), (0.5, 1.0)])
def test_fit_power_law_recovers_exact_power_law(exponent, prefactor):
    k = np.arange(3, 40, dtype=float)
    got_exponent, got_prefactor = spectrum.fit_power_law(k, prefactor * k ** exponent)
    assert abs(got_exponent - exponent) < 1e-12
    assert abs(got_prefactor / prefactor - 1) < 1e-12


def test_fit_power_law_uses_absolute_values():
    k = np.arange(1, 10, dtype=float)
    assert abs(spectrum.fit_power_law(k, -(k ** -2.0))[0] + 2.0) < 1e-12


@pytest.mark.parametrize("k, lam", [
    (np.arange(1, 5), np.ones(3)),               # length mismatch
    (np.array([1.0]), np.array([1.0])),          # fewer than 2 points
    (np.array([0.0, 1.0]), np.array([1.0, 1.0])),  # k <= 0
    (np.array([1.0, 2.0]), np.array([1.0, 0.0])),  # zero value
    (np.array([1.0, 2.0]), np.array([1.0, np.nan])),
])
def test_fit_power_law_validation(k, lam):
    with pytest.raises(ValueError):
        spectrum.fit_power_law(k, lam)


@pytest.mark.parametrize("d, kmax, match", [(1, 4, "d must"), (2.5, 4, "d must"),
                                            (3, -1, "kmax must"), (3, 2.0, "kmax must")])
def test_zonal_eigenvalues_validation(d, kmax, match):
    with pytest.raises(ValueError, match=match):
        spectrum.zonal_eigenvalues(np.exp, d, kmax, num_nodes=32)


def test_zonal_eigenvalues_rejects_kappa_of_wrong_shape():
    with pytest.raises(ValueError, match="kappa"):
        spectrum.zonal_eigenvalues(lambda t: np.ones(3), 3, 4, num_nodes=32)


# ---------------------------------------------------------------- parity fits and blocks

def test_parity_exponents():
    k = np.arange(80, dtype=float)
    k[0] = 1.0
    even_only = np.where(np.arange(80) % 2 == 0, 3.0 * k ** -3.0, 0.0)
    fit = spectrum.parity_exponents(even_only, kmin=10, kmax=70)
    assert abs(fit.even + 3) < 1e-12 and fit.odd is None
    both = np.where(np.arange(80) % 2 == 0, k ** -3.0, 0.5 * k ** -2.0)
    fit = spectrum.parity_exponents(both, kmin=10, kmax=70)
    assert abs(fit.even + 3) < 1e-12 and abs(fit.odd + 2) < 1e-12


@pytest.mark.parametrize("kmin, kmax", [(0, 20), (10, 12), (10, 80)])
def test_parity_exponents_validation(kmin, kmax):
    with pytest.raises(ValueError, match="kmin"):
        spectrum.parity_exponents(np.ones(50), kmin=kmin, kmax=kmax)


def test_eigenvalue_blocks():
    lam = np.array([5.0] + [3.0, 3.001, 2.999] + [1.0] * 5 + [0.1, 0.05])
    means, spreads = spectrum.eigenvalue_blocks(np.random.default_rng(0).permutation(lam), 3, 2)
    np.testing.assert_allclose(means, [5.0, 3.0, 1.0])
    np.testing.assert_allclose(spreads, [0.0, 0.002 / 3.0, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="kmax"):
        spectrum.eigenvalue_blocks(lam, 3, 3)


# ---------------------------------------------------------------- the exact k^-d asymptotic

@pytest.mark.parametrize("d", [2, 3, 4, 5, 7])
def test_kink_constant_is_the_kink_spectrum(d):
    # -||x - y|| = -sqrt(2 - 2t): lambda_k Gamma(k + d - 1/2) / Gamma(k - 1/2) = C_d for every
    # k >= 1, by quadrature. The values fall like k^-d, so the quadrature's absolute
    # error (~1e-16) bounds the relative error by ~1e-16 k^d / C_d: kmax = 48 keeps it < 1e-7.
    kmax = 48
    lam = spectrum.zonal_eigenvalues(lambda t: -np.sqrt(np.maximum(2 - 2 * t, 0)), d, kmax,
                                     num_nodes=256)
    ratio = spectrum.asymptotic_ratio(lam, d)
    np.testing.assert_allclose(ratio[1:], spectrum.kink_constant(d), rtol=1e-7)
    k = np.arange(1, kmax + 1)
    np.testing.assert_allclose(ratio[1:], lam[1:] * gamma(k + d - 0.5) / gamma(k - 0.5), rtol=1e-12)
    assert spectrum.kink_constant(2) == pytest.approx(1 / np.pi, rel=1e-15)
    assert spectrum.kink_constant(3) == pytest.approx(0.5, rel=1e-15)


@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_laplace_ratio_tends_to_spikiness_times_kink_constant(d, scale):
    # exp(-c s) = 1 - c s + c^2 s^2 / 2 - c^3 s^3 / 6 + ..., s = sqrt(2 - 2t): the s^3 term gives
    # the first correction, r_k = c C_d (1 - (d c^2 / 2) / ((k - 3/2)(k + d - 1/2)) + O(k^-4)).
    # The O(k^-4) rest has terms in c^2 (the next order of the s^3 term) and c^4 (the s^5
    # term), each ~ d^2 / k^4 (observed <= 4 (c^2 + c^4) d^2 / k^4).
    kmax = 160
    lam = spectrum.zonal_eigenvalues(lambda t: np.exp(-scale * np.sqrt(np.maximum(2 - 2 * t, 0))),
                                     d, kmax, num_nodes=2 * kmax + 64)
    k = np.arange(40, kmax + 1)
    r = spectrum.asymptotic_ratio(lam, d)[k] / (scale * spectrum.kink_constant(d))
    correction = -(d * scale ** 2 / 2) / ((k - 1.5) * (k + d - 0.5))
    rest = np.abs(r - 1 - correction)
    assert np.all(rest <= 10 * (scale ** 2 + scale ** 4) * d ** 2 / k ** 4), rest.max()


def test_parity_tail_on_exact_sequences():
    d, kmax = 3, 100
    k = np.arange(kmax + 1)
    base = np.abs(1 / spectrum.asymptotic_ratio(np.ones(kmax + 1), d))  # Gamma(k - 1/2) / Gamma(k + d - 1/2)
    lam = np.where(k % 2 == 0, 2.0, 0.5) * base * (1 + 1 / np.maximum(k, 1) ** 2)
    tail = spectrum.parity_tail(lam, d, kmin=50)
    assert tail.constant_even == pytest.approx(2.0 * (1 + 1 / 100 ** 2), rel=1e-14)
    assert tail.constant_odd == pytest.approx(0.5 * (1 + 1 / 99 ** 2), rel=1e-14)
    assert tail.spread_even == pytest.approx((1 + 1 / 50 ** 2) / (1 + 1 / 100 ** 2) - 1, rel=1e-10)
    assert tail.spread_odd == pytest.approx((1 + 1 / 51 ** 2) / (1 + 1 / 99 ** 2) - 1, rel=1e-10)
    with pytest.raises(ValueError, match="kmin"):
        spectrum.parity_tail(lam, d, kmin=100)
