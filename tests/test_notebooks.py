"""The notebook contract (docs/ARCHITECTURE.md §7), checked on every chapter notebook."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and not cell.get("execution_count"), path.name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_parameters_cell_first_with_contract_names(path):
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), "first code cell not tagged"
    source = "".join(first["source"])
    for name in ("QUICK = False", "SEED =", "RESULTS_PATH = None"):
        assert name in source, f"{path.name}: parameters cell lacks {name!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_ends_with_claim_check_and_has_exercises(path):
    text = "".join("".join(c["source"]) for c in _cells(path))
    assert "## Claim check" in text
    assert text.count("```{exercise}") >= 2 and "```{solution}" in text
    assert "write_results(RESULTS_PATH" in text


# One bad value per chapter, of different kinds; each stops the notebook in its
# validation cell with an error that names the parameter.
BAD_PARAMETERS = {
    "01_tangent_kernel": ("SEED", -3),
    "02_hessian_scaling": ("NUM_STEPS", -5),
    "03_nonlinear_last_layer": ("TRAIN_WIDTHS", [64, 129, 256]),
    "04_resnet_spectrum": ("GAMMAS", [0.75, 1.0]),
    "05_nonlinear_advantage": ("WIDTH", 0),
    "06_low_rank": ("ETA", -1.0),
}


def test_every_chapter_has_a_bad_parameter_case():
    assert sorted(BAD_PARAMETERS) == [p.stem for p in CHAPTERS]


@pytest.mark.notebook
@pytest.mark.parametrize("chapter", sorted(BAD_PARAMETERS))
def test_bad_parameter_stops_with_named_error(chapter, tmp_path):
    import papermill as pm

    from ntkbook.runner import run_chapter

    name, value = BAD_PARAMETERS[chapter]
    with pytest.raises(pm.PapermillExecutionError, match=f"parameter {name}"):
        run_chapter(ROOT / "notebooks" / f"{chapter}.ipynb", {"QUICK": True, name: value},
                    tmp_path / "bad.ipynb")
