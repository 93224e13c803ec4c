"""The pinned stack (docs/ARCHITECTURE.md §5) is what is installed, and works together."""
from importlib.metadata import version

import pytest

PINS = {
    "jax": "0.5.3",
    "jaxlib": "0.5.3",
    "neural-tangents": "0.6.5",
    "tensorflow": "2.20.0",
    "tf2jax": "0.3.7",
    "optax": "0.2.8",
    "jupyter-book": "1.0.4.post1",
    "papermill": "2.7.0",
}


@pytest.mark.parametrize("package, pinned", sorted(PINS.items()))
def test_pinned_versions(package, pinned):
    assert version(package) == pinned


def _lock(name):
    """``{package: [(version, marker), ...]}`` and the requirement blocks of a uv lock file."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / name).read_text()
    blocks = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2].strip())
    pins = {}
    for block in blocks:
        head = block.split("\\", 1)[0]
        package, _, rest = head.partition("==")
        version, _, marker = rest.partition(";")
        pins.setdefault(package.strip(), []).append((version.strip(), marker.strip()))
    return pins, blocks


def test_lock_file_pins_the_same_versions():
    pins, _ = _lock("requirements.lock")
    for package, pinned in PINS.items():
        assert [v for v, _ in pins[package]] == [pinned], package


def test_lock_files_are_universal_with_hashes():
    """Every pin hashed; one stack for Python 3.11-3.13 (no per-version splits of the core)."""
    for name in ("requirements.lock", "requirements-reader.lock"):
        pins, blocks = _lock(name)
        assert all("--hash=sha256:" in block for block in blocks), name
        assert "tensorflow-cpu" not in pins and "tensorflow-macos" not in pins, name
        for package in ("jax", "jaxlib", "numpy", "tensorflow", "neural-tangents", "scipy"):
            assert len(pins[package]) == 1, (name, package, pins[package])


def test_reader_lock_is_the_readers_set_at_the_same_versions():
    full, _ = _lock("requirements.lock")
    reader, _ = _lock("requirements-reader.lock")
    for package, versions in reader.items():
        assert [v for v, _ in versions] == [v for v, _ in full[package]], package
    for package in ("jax", "neural-tangents", "matplotlib", "papermill", "jupyterlab",
                    "jupyterlab-myst", "myst-nb"):
        assert package in reader, package
    for package in ("jupyter-book", "pytest", "otter-grader", "playwright", "sphinx-exercise",
                    "sphinxcontrib-bibtex", "pre-commit", "uv"):
        assert package not in reader and package in full, package


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
