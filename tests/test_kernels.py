"""Tests for ntkbook.kernels: arc-cosine kernels, FC-NTK, Laplace, spikiness, Gram matrices.

Every closed form is checked against an independent computation:
  * arc-cosine kernels against 1-d Gaussian integrals (scipy quad);
  * the FC-NTK against neural-tangents' stax kernel (``ntkbook.infinite.stax_mlp``)
    on pairs of unit vectors with prescribed cosines;
  * spikiness and kink slopes against closed forms (Laplace, arc-cosine, FC-NTK).

Tolerances (float64):
  * CLOSED_TOL = 1e-12 relative to the largest entry: both sides are the same
    recursions evaluated in a different order (stax: covariance matrices; here:
    cosines), so only a few ulps per layer separate them (observed <= 3e-15).
  * QUAD_TOL = 1e-10: scipy.integrate.quad's default accuracy.
  * SPIKE_TOL = 2e-5: Richardson extrapolation at chord s = 3e-3 leaves an
    O((L s)^3) truncation error for depth-L kernels and ~1e-16/s^2 of rounding
    amplified by the sqrt kink (observed <= 4e-6 relative up to L = 128).
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import ntkbook as nk
from ntkbook import kernels

pytestmark = pytest.mark.filterwarnings("ignore:.*FanIn.*:UserWarning")  # stax's independence notice

CLOSED_TOL = 1e-12
QUAD_TOL = 1e-10
SPIKE_TOL = 2e-5
COSINES = np.array([1.0, 0.999, 0.7, 0.3, 0.0, -0.2, -0.5, -0.9, -1.0])


def _pairs(t, d):
    """Unit vectors x_i = e_1 and y_i with <x_i, y_i> = t_i, in R^d."""
    x = np.zeros((t.size, d))
    y = np.zeros((t.size, d))
    x[:, 0] = 1.0
    y[:, 0], y[:, 1] = t, np.sqrt(1 - t ** 2)
    return jnp.asarray(x), jnp.asarray(y)


def _stax_diag(kernel_fn, t, d, get="ntk"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stax's FanInSum independence notice
        x, y = _pairs(t, d)
        return np.diag(np.asarray(kernel_fn(x, y, get)))


def _relerr(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# ---------------------------------------------------------------- arc-cosine

def test_arccos_kernel_values():
    assert kernels.kappa_0(1.0) == 1.0 and kernels.kappa_0(-1.0) == 0.0
    assert abs(kernels.kappa_0(0.0) - 0.5) < 1e-16
    assert abs(kernels.kappa_1(1.0) - 1.0) < 1e-16 and abs(kernels.kappa_1(-1.0)) < 1e-16
    assert abs(kernels.kappa_1(0.0) - 1 / np.pi) < 1e-16


@pytest.mark.parametrize("rho", [-0.95, -0.4, 0.0, 0.35, 0.8, 0.99])
def test_arccos_kernels_are_gaussian_expectations(rho):
    # v = rho u + s w with u, w ~ N(0, 1) independent, s = sqrt(1 - rho^2):
    # E[relu(u) relu(v)] = E_u[relu(u) (a Phi(a/s) + s phi(a/s))], a = rho u,
    # E[1{u>0} 1{v>0}] = E_u[1{u>0} Phi(rho u / s)].
    s = np.sqrt(1 - rho ** 2)
    phi, cdf = stats.norm.pdf, stats.norm.cdf
    e1 = integrate.quad(lambda u: u * (rho * u * cdf(rho * u / s) + s * phi(rho * u / s)) * phi(u),
                        0, np.inf, epsabs=1e-13)[0]
    e0 = integrate.quad(lambda u: cdf(rho * u / s) * phi(u), 0, np.inf, epsabs=1e-13)[0]
    assert abs(kernels.kappa_1(rho) / 2 - e1) < QUAD_TOL
    assert abs(kernels.kappa_0(rho) / 2 - e0) < QUAD_TOL


def test_kappa_1_derivative_is_kappa_0():
    t = np.linspace(-0.95, 0.95, 21)
    h = 1e-6
    fd = (kernels.kappa_1(t + h) - kernels.kappa_1(t - h)) / (2 * h)
    np.testing.assert_allclose(fd, kernels.kappa_0(t), atol=1e-8)


def test_kernels_keep_shape():
    t = np.linspace(-1, 1, 12).reshape(3, 4)
    for value in (kernels.kappa_0(t), kernels.kappa_1(t), kernels.laplace(t), kernels.fc_ntk(t, 2)):
        assert value.shape == (3, 4)


# -------------------------------------------------------- against neural-tangents

@pytest.mark.parametrize("d, depth, w_std, b_std", [(3, 1, 1.0, 0.0), (5, 2, 2 ** 0.5, 0.0),
                                                    (3, 3, 2 ** 0.5, 0.1), (4, 4, 1.3, 0.5)])
def test_fc_ntk_matches_stax(d, depth, w_std, b_std):
    _, _, kernel_fn = nk.infinite.stax_mlp(64, depth, w_std=w_std, b_std=b_std)
    ref = _stax_diag(kernel_fn, COSINES, d)
    got = kernels.fc_ntk(COSINES, depth, w_std=w_std, b_std=b_std, input_variance=1 / d)
    assert _relerr(got, ref) < CLOSED_TOL


# ---------------------------------------------------------------- properties

def test_fc_ntk_value_at_one():
    # w_std = sqrt(2), no bias: Sigma_l(x, x) = 2 q and Theta(x, x) = 2 (L + 1) q.
    for depth in (1, 3, 10):
        assert abs(kernels.fc_ntk(1.0, depth, w_std=2 ** 0.5, input_variance=0.5) - (depth + 1)) < 1e-13


KERNELS = {
    "laplace": lambda t: kernels.laplace(t, scale=1.5),
    "fc_bias": lambda t: kernels.fc_ntk(t, 3, w_std=2 ** 0.5, b_std=0.3),
    "fc_nobias": lambda t: kernels.fc_ntk(t, 1, w_std=2 ** 0.5),
    "fc_deep": lambda t: kernels.fc_ntk(t, 16, w_std=2 ** 0.5),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_gram_matrices_are_positive_definite(name):
    x = nk.data.sphere(60, 3, key=jax.random.PRNGKey(0))
    gram = kernels.zonal_gram(KERNELS[name], np.asarray(x, dtype=np.float64))
    np.testing.assert_allclose(gram, gram.T, atol=1e-15)
    eig = np.linalg.eigvalsh(gram)
    assert eig.min() > 1e-10 * eig.max()


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("d", [2, 3, 5])
def test_zonal_eigenvalues_are_nonnegative(name, d):
    lam = nk.zonal_eigenvalues(KERNELS[name], d, 64, num_nodes=256)
    assert lam.min() > -1e-12 * lam[0]
    assert lam[0] > 0


def test_two_layer_ntk_without_bias_has_vanishing_odd_eigenvalues():
    # t kappa_0(t) + kappa_1(t) = t + (2 t arcsin t + sqrt(1 - t^2)) / pi: its
    # odd part is the polynomial t, so lambda_k = 0 for odd k >= 3.
    lam = nk.zonal_eigenvalues(lambda t: kernels.fc_ntk(t, 1, w_std=2 ** 0.5), 3, 31, num_nodes=256)
    assert np.max(np.abs(lam[3::2])) < 1e-13 * lam[0]
    assert lam[1] > 0.1 * lam[0] and np.all(lam[::2] > 0)


# ---------------------------------------------------------------- spikiness and kinks

@pytest.mark.parametrize("scale", [0.5, 2.0, 7.0])
def test_spikiness_of_laplace_is_its_scale(scale):
    assert abs(kernels.spikiness(lambda t: kernels.laplace(t, scale=scale)) - scale) < SPIKE_TOL * scale


def test_fc_spikiness_grows_linearly():
    # FC-NTK with w_std = sqrt(2) and no bias: c_L = L / (2 pi) (first-order
    # expansion of the recursion; exercise ex-04-fc-spike of chapter 4).
    for depth in (1, 2, 8, 64):
        fc = kernels.spikiness(lambda t: kernels.fc_ntk(t, depth, w_std=2 ** 0.5))
        assert abs(fc / (depth / (2 * np.pi)) - 1) < SPIKE_TOL


def test_kink_slopes_of_arccos_and_laplace():
    # kappa_0(t) = 1 - arccos(t)/pi: arccos(1 - s^2/2) = 2 arcsin(s/2) = s + O(s^3), and
    # near t = -1 kappa_0 = ||x + y|| / pi + O(||x + y||^3); the Laplace kernel is smooth at -1.
    assert kernels.kink_slope(kernels.kappa_0) == pytest.approx(1 / np.pi, rel=SPIKE_TOL)
    assert kernels.kink_slope(kernels.kappa_0, at=-1.0) == pytest.approx(-1 / np.pi, rel=SPIKE_TOL)
    assert kernels.kink_slope(kernels.kappa_1, at=-1.0) == pytest.approx(0.0, abs=SPIKE_TOL)
    assert kernels.kink_slope(lambda t: kernels.laplace(t, scale=2.0), at=-1.0) == pytest.approx(0, abs=1e-6)
    scale = 3.0
    laplace = lambda t: 5.0 * kernels.laplace(t, scale=scale)  # noqa: E731
    assert kernels.kink_slope(laplace) == pytest.approx(5.0 * scale, rel=SPIKE_TOL)
    assert kernels.spikiness(laplace) == pytest.approx(scale, rel=SPIKE_TOL)


def test_normalised_kernel_is_one_at_one():
    kappa = lambda t: kernels.fc_ntk(t, 3, w_std=1.3, b_std=0.2, input_variance=0.3)  # noqa: E731
    shape = kernels.normalised(kappa)
    assert shape(1.0) == 1.0
    np.testing.assert_allclose(shape(COSINES), kappa(COSINES) / kappa(1.0), rtol=1e-14)
    assert kernels.spikiness(shape) == pytest.approx(kernels.spikiness(kappa), rel=1e-12)  # scale-free


def test_spikiness_validation():
    with pytest.raises(ValueError, match="chord"):
        kernels.spikiness(kernels.laplace, chord=0.5)
    with pytest.raises(ValueError, match="kappa"):
        kernels.spikiness(lambda t: -np.ones_like(t))
    with pytest.raises(ValueError, match="at must"):
        kernels.kink_slope(kernels.laplace, at=0.5)


# ---------------------------------------------------------------- gram

def test_zonal_gram_sets_exact_diagonal_and_validates():
    x = np.asarray(nk.data.fibonacci_sphere(50), dtype=np.float64)
    kappa = lambda t: kernels.fc_ntk(t, 4, w_std=2 ** 0.5)  # noqa: E731
    gram = kernels.zonal_gram(kappa, x)
    np.testing.assert_array_equal(np.diag(gram), kappa(1.0))
    with pytest.raises(ValueError, match="unit"):
        kernels.zonal_gram(kernels.laplace, 2 * x)
    with pytest.raises(ValueError, match="same d"):
        kernels.zonal_gram(kernels.laplace, x, x[:, :2])


@pytest.mark.parametrize("call, match", [
    (lambda: kernels.kappa_0(1.5), "t must"),
    (lambda: kernels.fc_ntk(0.5, 0), "depth"),
    (lambda: kernels.fc_ntk(0.5, 2, w_std=0.0), "w_std"),
    (lambda: kernels.fc_ntk(0.5, 2, b_std=-1.0), "b_std"),
    (lambda: kernels.laplace(0.5, scale=0.0), "scale"),
])
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
