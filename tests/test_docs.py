"""The contributor docs live in the repository and match the code (fast: nothing is run).

``docs/ARCHITECTURE.md`` names every package module and every chapter
notebook, documents only commands that exist, and lists the public contract
names with the signatures they really have; ``CONTRIBUTING.md`` points to it
(not to a design file outside the repository) and shows the package's glue.
"""
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"


def _text(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return path.read_text()


def test_architecture_exists_and_contributing_points_to_it():
    assert len(_text(ARCHITECTURE).splitlines()) > 100
    contributing = _text(CONTRIBUTING)
    assert "docs/ARCHITECTURE.md" in contributing
    assert "DESIGN.md" not in contributing
    assert "from myst_nb import glue" not in contributing
    assert "nk.notebook.glue" in contributing


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "ntkbook").glob("*.py")))
def test_every_package_module_is_described(module):
    assert f"`{module}`" in _text(ARCHITECTURE), f"docs/ARCHITECTURE.md does not describe {module}"


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
def test_every_chapter_notebook_is_described(notebook):
    assert notebook in _text(ARCHITECTURE), f"docs/ARCHITECTURE.md does not mention {notebook}"


def test_documented_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.M))
    for doc in (ARCHITECTURE, CONTRIBUTING):
        used = set(re.findall(r"`make ([a-z][\w-]*)", _text(doc)))
        assert used, doc.name
        assert used <= targets, f"{doc.name} documents missing make targets {sorted(used - targets)}"


def test_documented_subcommands_exist(capsys):
    from ntkbook.__main__ import main

    used = set()
    for doc in (ARCHITECTURE, CONTRIBUTING):
        used |= set(re.findall(r"python -m ntkbook ([a-z]+)", _text(doc)))
    assert used >= {"run", "list", "seeds"}
    for command in sorted(used):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0, f"`python -m ntkbook {command}` does not exist"
    capsys.readouterr()


# The public contract (docs/ARCHITECTURE.md §6): name -> parameters as documented.
CONTRACT = {
    "ntkbook.spectrum.zonal_eigenvalues": ["kappa", "d", "kmax", "*", "num_nodes"],
    "ntkbook.spectrum.fit_power_law": ["k", "lam"],
    "ntkbook.hessian.spectral_norm": ["fn", "params", "*", "key", "num_iters"],
    "ntkbook.ntk.empirical_ntk": ["apply_fn", "params", "x1", "x2"],
    "ntkbook.mlp": ["in_dim", "width", "depth", "*", "activation", "output_activation",
                    "w_std", "b_std"],
    "ntkbook.notebook.claim": ["name", "held", "value", "statement"],
    "ntkbook.notebook.assert_claims": ["claims"],
    "ntkbook.notebook.write_results": ["path", "results"],
    "ntkbook.notebook.glue": ["name", "value", "display"],
    "ntkbook.stats.fit_slope": ["widths", "values"],
}


def _signature(fn) -> list[str]:
    names, star = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            names.append("*")
            star = True
        names.append(p.name)
    return names


@pytest.mark.parametrize("dotted", sorted(CONTRACT))
def test_contract_names_import_with_documented_signatures(dotted):
    import importlib

    module_name, _, attr = dotted.rpartition(".")
    fn = getattr(importlib.import_module(module_name), attr)
    assert callable(fn)
    assert _signature(fn) == CONTRACT[dotted], f"{dotted}{inspect.signature(fn)}"
    assert attr in _text(ARCHITECTURE)


def test_slope_fields_as_documented():
    from ntkbook.stats import Slope

    assert Slope._fields == ("exponent", "spread", "stderr", "per_seed")
    assert "Slope(exponent, spread, stderr, per_seed)" in _text(ARCHITECTURE)
