"""The pinned stack of DESIGN.md §3 is what is installed, and works together."""
from importlib.metadata import version

import pytest

PINS = {
    "jax": "0.5.3",
    "jaxlib": "0.5.3",
    "neural-tangents": "0.6.5",
    "tensorflow-cpu": "2.19.1",
    "tf2jax": "0.3.7",
    "optax": "0.2.8",
    "jupyter-book": "1.0.4.post1",
    "papermill": "2.7.0",
}


@pytest.mark.parametrize("package, pinned", sorted(PINS.items()))
def test_pinned_versions(package, pinned):
    assert version(package) == pinned


def test_lock_file_pins_the_same_versions():
    from pathlib import Path

    lock = (Path(__file__).resolve().parent.parent / "requirements.lock").read_text().lower()
    for package, pinned in PINS.items():
        names = {package, package.replace("-", "_")}
        assert any(f"{n}=={pinned}" in lock for n in names), package


def test_importing_ntkbook_has_no_side_effects():
    import subprocess
    import sys

    code = ("import sys, jax, ntkbook; "
            "assert 'tensorflow' not in sys.modules and 'matplotlib.pyplot' not in sys.modules; "
            "assert not jax.config.jax_enable_x64; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"})
    assert out.stdout.strip() == "ok", out.stderr


def test_neural_tangents_kernel_and_empirical_implementations_work():
    import jax
    import neural_tangents as nt
    from neural_tangents import stax

    init_fn, apply_fn, kernel_fn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 2))
    assert kernel_fn(x, None, "ntk").shape == (3, 3)
    _, params = init_fn(jax.random.PRNGKey(1), x.shape)
    for impl in (1, 2):  # implementation 3 (structured derivatives) fails on jax 0.5.3
        assert nt.empirical_ntk_fn(apply_fn, implementation=impl)(x, None, params).shape == (3, 3)
