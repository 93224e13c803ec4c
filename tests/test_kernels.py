"""Tests for ntkbook.kernels (and the ResNet twins in models/ntk).

Every closed form is checked against an independent computation:
  * arc-cosine kernels against 1-d Gaussian integrals (scipy quad);
  * FC-NTK and ResNTK against neural-tangents' stax kernels
    (``ntkbook.ntk.stax_mlp`` / ``stax_resnet``) on pairs of unit vectors with
    prescribed cosines;
  * spikiness against its own closed form and the Laplace kernel.

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
    for value in (kernels.kappa_0(t), kernels.kappa_1(t), kernels.laplace(t),
                  kernels.fc_ntk(t, 2), kernels.resntk(t, 3, 0.5)):
        assert value.shape == (3, 4)
    assert kernels.resnet_cosines(t, 3, 0.5).shape == (4, 3, 4)


# -------------------------------------------------------- against neural-tangents

@pytest.mark.parametrize("d, depth, w_std, b_std", [(3, 1, 1.0, 0.0), (5, 2, 2 ** 0.5, 0.0),
                                                    (3, 3, 2 ** 0.5, 0.1), (4, 4, 1.3, 0.5)])
def test_fc_ntk_matches_stax(d, depth, w_std, b_std):
    _, _, kernel_fn = nk.ntk.stax_mlp(64, depth, w_std=w_std, b_std=b_std)
    ref = _stax_diag(kernel_fn, COSINES, d)
    got = kernels.fc_ntk(COSINES, depth, w_std=w_std, b_std=b_std, input_variance=1 / d)
    assert _relerr(got, ref) < CLOSED_TOL


@pytest.mark.parametrize("d, depth, alpha, train_ends", [
    (3, 1, 1.0, True), (4, 1, 1.0, False), (4, 3, 0.7, True), (3, 3, 0.7, False),
    (3, 8, 8 ** -0.5, True), (4, 8, 8 ** -0.5, False), (3, 16, 1 / 16, False)])
def test_resntk_matches_stax(d, depth, alpha, train_ends):
    _, _, kernel_fn = nk.ntk.stax_resnet(64, depth, alpha=alpha, train_ends=train_ends)
    ref = _stax_diag(kernel_fn, COSINES, d)
    got = kernels.resntk(COSINES, depth, alpha, train_ends=train_ends, input_variance=1 / d)
    assert _relerr(got, ref) < CLOSED_TOL


def test_stax_resnet_fixed_ends_kernel_api():
    _, _, kernel_fn = nk.ntk.stax_resnet(64, 2, alpha=0.5, train_ends=False)
    x, y = _pairs(COSINES[:3], 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nngp, ntk = kernel_fn(x, y)
    np.testing.assert_allclose(kernel_fn(x, y, "ntk"), ntk)
    np.testing.assert_allclose(kernel_fn(x, y, ("nngp", "ntk"))[0], nngp)
    # NNGP of the read-out = covariance of h_L = (1 + alpha^2)^L t / d
    rho = kernels.resnet_cosines(COSINES[:3], 2, 0.5)[-1]
    np.testing.assert_allclose(np.diag(nngp), 1.25 ** 2 * rho / 3, rtol=1e-12)


# ---------------------------------------------------------------- properties

@pytest.mark.parametrize("depth, alpha", [(1, 1.0), (4, 0.5), (32, 32 ** -0.5)])
def test_resntk_value_at_one(depth, alpha):
    a2 = alpha ** 2
    expected = 2 * depth * a2 * (1 + a2) ** (depth - 1)
    assert abs(kernels.resntk(1.0, depth, alpha) / expected - 1) < 1e-14
    trained = kernels.resntk(1.0, depth, alpha, train_ends=True)
    assert abs(trained / (expected + 2 * (1 + a2) ** depth) - 1) < 1e-14  # A and v terms
    assert abs(kernels.resntk(1.0, depth, alpha, input_variance=0.25) / expected - 0.25) < 1e-14


def test_resntk_equals_unrolled_sum_over_blocks():
    # second implementation: Theta_L = sum_l alpha^2 S_{l-1} (rho kappa_0 + kappa_1)(rho_{l-1})
    #                                  * prod_{i > l} (1 + alpha^2 kappa_0(rho_{i-1}))
    depth, alpha = 6, 0.6
    a2 = alpha ** 2
    rho = kernels.resnet_cosines(COSINES, depth, alpha)
    total = np.zeros_like(COSINES)
    for l in range(1, depth + 1):
        back = np.prod([1 + a2 * kernels.kappa_0(rho[i - 1]) for i in range(l + 1, depth + 1)]
                       + [np.ones_like(COSINES)], axis=0)
        block = rho[l - 1] * kernels.kappa_0(rho[l - 1]) + kernels.kappa_1(rho[l - 1])
        total += a2 * (1 + a2) ** (l - 1) * block * back
    assert _relerr(kernels.resntk(COSINES, depth, alpha), total) < CLOSED_TOL


def test_fc_ntk_value_at_one():
    # w_std = sqrt(2), no bias: Sigma_l(x, x) = 2 q and Theta(x, x) = 2 (L + 1) q.
    for depth in (1, 3, 10):
        assert abs(kernels.fc_ntk(1.0, depth, w_std=2 ** 0.5, input_variance=0.5) - (depth + 1)) < 1e-13


def test_resnet_cosines_stay_in_range_and_grow():
    rho = kernels.resnet_cosines(COSINES, 10, 1.0)
    assert np.all(np.abs(rho) <= 1)
    assert np.all(np.diff(rho, axis=0) >= -1e-15)  # kappa_1(t) >= t: correlations grow


KERNELS = {
    "laplace": lambda t: kernels.laplace(t, scale=1.5),
    "fc_bias": lambda t: kernels.fc_ntk(t, 3, w_std=2 ** 0.5, b_std=0.3),
    "fc_nobias": lambda t: kernels.fc_ntk(t, 1, w_std=2 ** 0.5),
    "resntk": lambda t: kernels.resntk(t, 8, 8 ** -0.5),
    "resntk_gamma1": lambda t: kernels.resntk(t, 32, 1 / 32),
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


# ---------------------------------------------------------------- spikiness

@pytest.mark.parametrize("scale", [0.5, 2.0, 7.0])
def test_spikiness_of_laplace_is_its_scale(scale):
    assert abs(kernels.spikiness(lambda t: kernels.laplace(t, scale=scale)) - scale) < SPIKE_TOL * scale


@pytest.mark.parametrize("depth", [1, 2, 7, 64, 128])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0])
def test_resntk_spikiness_closed_form(depth, gamma):
    alpha = depth ** -gamma
    numeric = kernels.spikiness(lambda t: kernels.resntk(t, depth, alpha))
    closed = kernels.resntk_spikiness(depth, alpha)
    assert abs(numeric - closed) < SPIKE_TOL * closed


def test_fc_spikiness_grows_linearly():
    # FC-NTK with w_std = sqrt(2) and no bias: c_L = L / (2 pi) (first-order
    # expansion of the recursion, as for resntk_spikiness); L = 1 is the
    # two-layer NTK t kappa_0 + kappa_1, the same kernel as the ResNTK at L = 1.
    for depth in (1, 2, 8, 64):
        fc = kernels.spikiness(lambda t: kernels.fc_ntk(t, depth, w_std=2 ** 0.5))
        assert abs(fc / (depth / (2 * np.pi)) - 1) < SPIKE_TOL
    assert abs(kernels.resntk_spikiness(1, 0.3) - 1 / (2 * np.pi)) < 1e-15


def test_normalised_kernel_is_one_at_one():
    shape = kernels.normalised(lambda t: kernels.resntk(t, 5, 0.4, input_variance=0.3))
    assert shape(1.0) == 1.0
    np.testing.assert_allclose(shape(COSINES), kernels.resntk(COSINES, 5, 0.4) / kernels.resntk(1.0, 5, 0.4),
                               rtol=1e-14)
    # spikiness is scale-free
    assert kernels.spikiness(shape) == pytest.approx(kernels.resntk_spikiness(5, 0.4), rel=SPIKE_TOL)


def test_spikiness_validation():
    with pytest.raises(ValueError, match="chord"):
        kernels.spikiness(kernels.laplace, chord=0.5)
    with pytest.raises(ValueError, match="kappa"):
        kernels.spikiness(lambda t: -np.ones_like(t))


# ---------------------------------------------------------------- fits, blocks, gram

def test_parity_exponents():
    k = np.arange(80, dtype=float)
    k[0] = 1.0
    even_only = np.where(np.arange(80) % 2 == 0, 3.0 * k ** -3.0, 0.0)
    fit = kernels.parity_exponents(even_only, kmin=10, kmax=70)
    assert abs(fit.even + 3) < 1e-12 and fit.odd is None
    both = np.where(np.arange(80) % 2 == 0, k ** -3.0, 0.5 * k ** -2.0)
    fit = kernels.parity_exponents(both, kmin=10, kmax=70)
    assert abs(fit.even + 3) < 1e-12 and abs(fit.odd + 2) < 1e-12


@pytest.mark.parametrize("kmin, kmax", [(0, 20), (10, 12), (10, 80)])
def test_parity_exponents_validation(kmin, kmax):
    with pytest.raises(ValueError, match="kmin"):
        kernels.parity_exponents(np.ones(50), kmin=kmin, kmax=kmax)


def test_eigenvalue_blocks():
    lam = np.array([5.0] + [3.0, 3.001, 2.999] + [1.0] * 5 + [0.1, 0.05])
    means, spreads = kernels.eigenvalue_blocks(np.random.default_rng(0).permutation(lam), 3, 2)
    np.testing.assert_allclose(means, [5.0, 3.0, 1.0])
    np.testing.assert_allclose(spreads, [0.0, 0.002 / 3.0, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="kmax"):
        kernels.eigenvalue_blocks(lam, 3, 3)


def test_zonal_gram_sets_exact_diagonal_and_validates():
    x = np.asarray(nk.data.fibonacci_sphere(50), dtype=np.float64)
    gram = kernels.zonal_gram(lambda t: kernels.resntk(t, 4, 0.5), x)
    np.testing.assert_array_equal(np.diag(gram), kernels.resntk(1.0, 4, 0.5))
    with pytest.raises(ValueError, match="unit"):
        kernels.zonal_gram(kernels.laplace, 2 * x)
    with pytest.raises(ValueError, match="same d"):
        kernels.zonal_gram(kernels.laplace, x, x[:, :2])


@pytest.mark.parametrize("call, match", [
    (lambda: kernels.kappa_0(1.5), "t must"),
    (lambda: kernels.fc_ntk(0.5, 0), "depth"),
    (lambda: kernels.fc_ntk(0.5, 2, w_std=0.0), "w_std"),
    (lambda: kernels.fc_ntk(0.5, 2, b_std=-1.0), "b_std"),
    (lambda: kernels.resntk(0.5, 2.5, 0.5), "depth"),
    (lambda: kernels.resntk(0.5, 2, 0.0), "alpha"),
    (lambda: kernels.resntk(0.5, 2, 0.5, input_variance=-1.0), "input_variance"),
    (lambda: kernels.laplace(0.5, scale=0.0), "scale"),
    (lambda: kernels.resntk_spikiness(0, 0.5), "depth"),
])
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- the finite network

def test_resnet_fixed_ends_have_zero_gradient_and_same_function():
    x = nk.data.sphere(5, 3, key=jax.random.PRNGKey(1))
    trained = nk.resnet(3, 16, 3, alpha=0.5)
    fixed = nk.resnet(3, 16, 3, alpha=0.5, train_ends=False)
    params = trained.init_fn(jax.random.PRNGKey(2))
    np.testing.assert_array_equal(trained.apply_fn(params, x), fixed.apply_fn(params, x))
    grads = jax.grad(lambda p: jnp.sum(fixed.apply_fn(p, x)))(params)
    assert float(jnp.max(jnp.abs(grads["A"]))) == 0.0 and float(jnp.max(jnp.abs(grads["v"]))) == 0.0
    assert float(jnp.max(jnp.abs(grads["blocks"][0]["W"]))) > 0
    # NTK with A, v trained = NTK of the blocks + the A and v parts
    ntk_all = nk.empirical_ntk(trained.apply_fn, params, x)
    ntk_blocks = nk.empirical_ntk(fixed.apply_fn, params, x)
    jac = nk.ntk.jacobian_matrix(trained.apply_fn, params, x)
    jac_blocks = nk.ntk.jacobian_matrix(fixed.apply_fn, params, x)
    np.testing.assert_allclose(ntk_all, jac @ jac.T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ntk_blocks, jac_blocks @ jac_blocks.T, rtol=1e-10, atol=1e-10)
    assert float(jnp.min(jnp.diag(ntk_all - ntk_blocks))) > 0


def test_resnet_validation():
    with pytest.raises(ValueError, match="train_ends"):
        nk.resnet(3, 8, 2, alpha=0.5, train_ends=1)
    with pytest.raises(ValueError, match="depth"):
        nk.resnet(3, 8, 0, alpha=0.5)


def test_empirical_ntk_of_wide_resnet_is_close_to_resntk():
    # A Monte-Carlo sanity check (one seed, width 512): relative error ~ m^-1/2.
    d, depth, alpha = 3, 2, 0.7
    x = nk.data.fibonacci_sphere(8)
    model = nk.resnet(d, 512, depth, alpha=alpha, train_ends=False)
    ntk = np.asarray(nk.empirical_ntk(model.apply_fn, model.init_fn(jax.random.PRNGKey(3)), x))
    ref = kernels.zonal_gram(lambda t: kernels.resntk(t, depth, alpha, input_variance=1 / d),
                             np.asarray(x, dtype=np.float64))
    assert np.linalg.norm(ntk - ref) / np.linalg.norm(ref) < 0.25
