"""Tests for ntkbook.resntk (and the ResNet twins ``models.resnet`` / ``infinite.stax_resnet``).

Independent checks:
  * the recursion against neural-tangents' stax kernel (``ntkbook.infinite.stax_resnet``)
    on pairs of unit vectors with prescribed cosines, A and v trained or fixed;
  * against a second implementation (the unrolled sum over blocks) and the
    value at t = 1;
  * ``resntk_spikiness`` against the numerical limit ``kernels.spikiness``;
  * the eigenvalue signs and the power-law constants (``spectrum.parity_tail``)
    against the kink slopes at t = 1 and t = -1 (``kernels.kink_slope``);
  * the wide finite network's empirical NTK.

Tolerances (float64): CLOSED_TOL and SPIKE_TOL as in tests/test_kernels.py.
TAIL_TOL = 2e-3: the ratio lambda_k Gamma(k + d - 1/2) / Gamma(k - 1/2) at
k ~ 256 is its limit up to a b / k^2 correction, b <= 7 for these kernels at
d <= 3 (measured over k = 64..128), so <= 1.1e-4; 2e-3 also covers the
O(k^-2) kink-slope error of the Richardson limit.
"""
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import kernels, resntk, spectrum

pytestmark = pytest.mark.filterwarnings("ignore:.*FanIn.*:UserWarning")  # stax's independence notice

CLOSED_TOL = 1e-12
SPIKE_TOL = 2e-5
TAIL_TOL = 2e-3
COSINES = np.array([1.0, 0.999, 0.7, 0.3, 0.0, -0.2, -0.5, -0.9, -1.0])


def _stax_diag(kernel_fn, t, d):
    x = np.zeros((t.size, d))
    y = np.zeros((t.size, d))
    x[:, 0] = 1.0
    y[:, 0], y[:, 1] = t, np.sqrt(1 - t ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stax's FanInSum independence notice
        return np.diag(np.asarray(kernel_fn(jnp.asarray(x), jnp.asarray(y), "ntk")))


def _relerr(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_train_ends_defaults_agree_with_the_models():
    defaults = [inspect.signature(fn).parameters["train_ends"].default
                for fn in (resntk.resntk, resntk.resntk_spikiness, nk.models.resnet,
                           nk.infinite.stax_resnet)]
    assert defaults == [True] * 4


def test_shapes():
    t = np.linspace(-1, 1, 12).reshape(3, 4)
    assert resntk.resntk(t, 3, 0.5).shape == (3, 4)
    assert resntk.resnet_cosines(t, 3, 0.5).shape == (4, 3, 4)


@pytest.mark.parametrize("d, depth, alpha, train_ends", [
    (3, 1, 1.0, True), (4, 1, 1.0, False), (4, 3, 0.7, True), (3, 3, 0.7, False),
    (3, 8, 8 ** -0.5, True), (4, 8, 8 ** -0.5, False), (3, 16, 1 / 16, False)])
def test_resntk_matches_stax(d, depth, alpha, train_ends):
    _, _, kernel_fn = nk.infinite.stax_resnet(64, depth, alpha=alpha, train_ends=train_ends)
    ref = _stax_diag(kernel_fn, COSINES, d)
    got = resntk.resntk(COSINES, depth, alpha, train_ends=train_ends, input_variance=1 / d)
    assert _relerr(got, ref) < CLOSED_TOL


def test_stax_resnet_fixed_ends_kernel_api():
    _, _, kernel_fn = nk.infinite.stax_resnet(64, 2, alpha=0.5, train_ends=False)
    t = COSINES[:3]
    x, y = np.zeros((3, 3)), np.zeros((3, 3))
    x[:, 0], y[:, 0], y[:, 1] = 1.0, t, np.sqrt(1 - t ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nngp, ntk = kernel_fn(jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(kernel_fn(x, y, "ntk"), ntk)
        np.testing.assert_allclose(kernel_fn(x, y, ("nngp", "ntk"))[0], nngp)
    # NNGP of the read-out = covariance of h_L = (1 + alpha^2)^L rho_L / d
    rho = resntk.resnet_cosines(t, 2, 0.5)[-1]
    np.testing.assert_allclose(np.diag(nngp), 1.25 ** 2 * rho / 3, rtol=1e-12)


@pytest.mark.parametrize("depth, alpha", [(1, 1.0), (4, 0.5), (32, 32 ** -0.5)])
def test_resntk_value_at_one(depth, alpha):
    a2 = alpha ** 2
    fixed = 2 * depth * a2 * (1 + a2) ** (depth - 1)  # = S_L 2 beta L
    assert abs(resntk.resntk(1.0, depth, alpha, train_ends=False) / fixed - 1) < 1e-14
    trained = resntk.resntk(1.0, depth, alpha)  # + Theta_0 carried along (S_L) + Sigma_L (S_L)
    assert abs(trained / (fixed + 2 * (1 + a2) ** depth) - 1) < 1e-14
    assert abs(resntk.resntk(1.0, depth, alpha, train_ends=False, input_variance=0.25) / fixed - 0.25) < 1e-14


def test_resntk_equals_unrolled_sum_over_blocks():
    # second implementation: Theta_L = sum_l alpha^2 S_{l-1} (rho kappa_0 + kappa_1)(rho_{l-1})
    #                                  * prod_{i > l} (1 + alpha^2 kappa_0(rho_{i-1}))
    depth, alpha = 6, 0.6
    a2 = alpha ** 2
    rho = resntk.resnet_cosines(COSINES, depth, alpha)
    total = np.zeros_like(COSINES)
    for l in range(1, depth + 1):
        back = np.prod([1 + a2 * kernels.kappa_0(rho[i - 1]) for i in range(l + 1, depth + 1)]
                       + [np.ones_like(COSINES)], axis=0)
        block = rho[l - 1] * kernels.kappa_0(rho[l - 1]) + kernels.kappa_1(rho[l - 1])
        total += a2 * (1 + a2) ** (l - 1) * block * back
    assert _relerr(resntk.resntk(COSINES, depth, alpha, train_ends=False), total) < CLOSED_TOL


def test_resnet_cosines_stay_in_range_and_grow():
    rho = resntk.resnet_cosines(COSINES, 10, 1.0)
    assert np.all(np.abs(rho) <= 1)
    assert np.all(np.diff(rho, axis=0) >= -1e-15)  # kappa_1(t) >= t: correlations grow


def test_one_block_is_the_two_layer_ntk():
    shape = kernels.normalised(lambda t: resntk.resntk(t, 1, 0.3, train_ends=False))
    two_layer = kernels.normalised(lambda t: kernels.fc_ntk(t, 1, w_std=2 ** 0.5))
    np.testing.assert_allclose(shape(COSINES), two_layer(COSINES), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("train_ends", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 7, 64, 128])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0])
def test_resntk_spikiness_closed_form(depth, gamma, train_ends):
    alpha = depth ** -gamma
    numeric = kernels.spikiness(lambda t: resntk.resntk(t, depth, alpha, train_ends=train_ends))
    closed = resntk.resntk_spikiness(depth, alpha, train_ends=train_ends)
    assert abs(numeric - closed) < SPIKE_TOL * closed
    if not train_ends and depth == 1:
        assert abs(closed - 1 / (2 * np.pi)) < 1e-15  # the two-layer NTK


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("depth, gamma", [(2, 0.0), (2, 1.0), (8, 0.5), (64, 0.25), (64, 1.0)])
def test_odd_eigenvalues_positive_from_two_blocks(d, depth, gamma):
    # The power series of the ResNTK in t has non-negative coefficients, and
    # from L = 2 on every odd power appears (arcsin(rho_1) in kappa_0(rho_1)),
    # so every lambda_k > 0 (Schoenberg 1942); at L = 1 the odd part is t alone.
    # The floor is the quadrature noise, read off the L = 1 kernel's zeros.
    kmax = 128
    one = nk.zonal_eigenvalues(kernels.normalised(lambda t: resntk.resntk(t, 1, 1.0, train_ends=False)),
                               d, kmax, num_nodes=2 * kmax + 64)
    noise = np.max(np.abs(one[3::2]))
    assert noise < 1e-13
    kappa = kernels.normalised(lambda t: resntk.resntk(t, depth, depth ** -gamma, train_ends=False))
    lam = nk.zonal_eigenvalues(kappa, d, kmax, num_nodes=2 * kmax + 64)
    assert np.min(lam[1::2]) > 1e3 * noise and np.min(lam) > 0


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("depth, gamma", [(2, 0.0), (8, 0.5), (16, 1.0)])
def test_parity_constants_are_the_kink_slopes(d, depth, gamma):
    # lambda_k ~ C_d (c + (-1)^k c') Gamma(k - 1/2) / Gamma(k + d - 1/2) for kappa / kappa(1),
    # with c the spikiness (kink at t = 1) and c' the kink slope at t = -1.
    kappa = kernels.normalised(lambda t: resntk.resntk(t, depth, depth ** -gamma, train_ends=False))
    kmax = 256
    tail = spectrum.parity_tail(nk.zonal_eigenvalues(kappa, d, kmax, num_nodes=2 * kmax + 64), d,
                                kmin=kmax - 2)
    c_d = spectrum.kink_constant(d)
    c, c_anti = kernels.spikiness(kappa), kernels.kink_slope(kappa, at=-1.0)
    assert tail.constant_even == pytest.approx(c_d * (c + c_anti), rel=TAIL_TOL)
    assert tail.constant_odd == pytest.approx(c_d * (c - c_anti), rel=TAIL_TOL)
    assert 0 < c_anti < c


@pytest.mark.parametrize("call, match", [
    (lambda: resntk.resntk(0.5, 2.5, 0.5), "depth"),
    (lambda: resntk.resntk(0.5, 2, 0.0), "alpha"),
    (lambda: resntk.resntk(0.5, 2, 0.5, input_variance=-1.0), "input_variance"),
    (lambda: resntk.resntk(0.5, 2, 0.5, train_ends=1), "train_ends"),
    (lambda: resntk.resntk_spikiness(0, 0.5), "depth"),
    (lambda: resntk.resntk_spikiness(2, 0.5, train_ends=None), "train_ends"),
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


@pytest.mark.parametrize("train_ends", [False, True])
def test_empirical_ntk_of_wide_resnet_is_close_to_resntk(train_ends):
    # A Monte-Carlo sanity check (one seed, width 512): relative error ~ m^-1/2.
    d, depth, alpha = 3, 2, 0.7
    x = nk.data.fibonacci_sphere(8)
    model = nk.resnet(d, 512, depth, alpha=alpha, train_ends=train_ends)
    ntk = np.asarray(nk.empirical_ntk(model.apply_fn, model.init_fn(jax.random.PRNGKey(3)), x))
    ref = kernels.zonal_gram(lambda t: resntk.resntk(t, depth, alpha, train_ends=train_ends,
                                                      input_variance=1 / d),
                             np.asarray(x, dtype=np.float64))
    assert np.linalg.norm(ntk - ref) / np.linalg.norm(ref) < 0.25
