"""ntkbook.infinite: the analytic limit kernel against Monte Carlo over wide networks.

The stax twins themselves are checked against the closed forms in
tests/test_kernels.py (``stax_mlp``) and tests/test_resntk.py (``stax_resnet``).
"""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk


def test_infinite_ntk_matches_stax_and_mean_of_wide_networks():
    # The analytic kernel is the mean of the empirical one: check it on a wide
    # one-hidden-layer erf net by Monte Carlo over initialisations.
    x = nk.data.sphere(3, 4, key=jax.random.PRNGKey(3))
    model = nk.mlp(4, 256, 1, activation="erf", w_std=1.5, b_std=0.3)
    exact = nk.infinite_ntk_fn(model.config)(x)
    keys = jax.random.split(jax.random.PRNGKey(4), 64)
    ntks = jax.vmap(lambda k: nk.empirical_ntk(model.apply_fn, model.init_fn(k), x))(keys)
    mean = jnp.mean(ntks, axis=0)
    # Monte Carlo error ~ 1/sqrt(64 * 256): 1.5% of the kernel scale is ~6 sigma.
    np.testing.assert_allclose(mean, exact, atol=0.015 * float(jnp.abs(exact).max()))


def test_infinite_ntk_rejects_output_activation():
    with pytest.raises(ValueError, match="output_activation"):
        nk.infinite_ntk_fn(nk.mlp(2, 4, 1, output_activation="tanh").config)


def test_infinite_ntk_fn_of_a_resnet_config_is_its_stax_twin():
    x = nk.data.sphere(4, 3, key=jax.random.PRNGKey(5))
    for train_ends in (True, False):
        model = nk.resnet(3, 16, 2, alpha=0.5, train_ends=train_ends)
        _, _, kernel_fn = nk.infinite.stax_resnet(16, 2, alpha=0.5, train_ends=train_ends)
        np.testing.assert_allclose(nk.infinite_ntk_fn(model.config)(x), kernel_fn(x, None, "ntk"),
                                   rtol=1e-14)


def test_infinite_ntk_fn_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        nk.infinite_ntk_fn({"kind": "cnn"})


def test_defer_experimental_loads_the_submodule_on_first_use(tmp_path, monkeypatch):
    # A package whose __init__ imports a heavy subpackage, as neural-tangents'
    # imports `experimental` (and with it TensorFlow).
    pkg = tmp_path / "deferpkg"
    (pkg / "heavy").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import heavy\nLIGHT = 1\n")
    (pkg / "heavy" / "__init__.py").write_text(
        "import sys\nsys.modules['deferpkg'].HEAVY_RAN = True\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert nk.infinite.defer_experimental("deferpkg.heavy")
    assert not nk.infinite.defer_experimental("deferpkg.heavy")     # one finder at a time
    import deferpkg
    try:
        assert deferpkg.LIGHT == 1 and not hasattr(deferpkg, "HEAVY_RAN")
        assert deferpkg.heavy.VALUE == 42 and deferpkg.HEAVY_RAN     # loads on first read
        assert not nk.infinite.defer_experimental("deferpkg.heavy")  # parent imported
    finally:
        for name in ("deferpkg", "deferpkg.heavy"):
            sys.modules.pop(name, None)


def test_importing_neural_tangents_after_ntkbook_does_not_import_tensorflow():
    code = ("import sys, ntkbook, neural_tangents as nt; "
            "assert nt.stax.Relu and nt.predict.gradient_descent_mse; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
