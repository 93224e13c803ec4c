"""The notebook contract of DESIGN.md §5, checked on every chapter notebook."""
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


@pytest.mark.notebook
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_bad_parameter_stops_with_named_error(path, tmp_path):
    import papermill as pm

    from ntkbook.__main__ import run_chapter

    with pytest.raises(pm.PapermillExecutionError, match="SEED"):
        run_chapter(path, {"QUICK": True, "SEED": -3}, tmp_path / "bad.ipynb")
