"""Chapter 5 (nonlinear advantage) in quick mode: the claim from its results JSON."""
from pathlib import Path

import papermill
import pytest

from ntkbook.__main__ import run_chapter

CHAPTER = "05_nonlinear_advantage"


def test_nonlinear_advantage_claim(quick_results):
    r = quick_results(CHAPTER)
    for key in ["acc_dense", "acc_linear", "acc_linearized_late", "acc_linearized_early",
                "frac_linearized", "average_path_length"]:
        assert key in r
    # the task needs non-linearity: the all-linear network is far behind
    assert r["acc_dense"] - r["acc_linear"] >= 0.3
    # after training, at least half the units become linear with a small loss
    assert r["frac_linearized"] >= 0.5
    assert r["acc_linearized_late"] >= r["acc_dense"] - 0.02
    assert r["acc_linearized_late"] >= r["acc_linear"] + 0.3
    # the same pressure applied early costs more accuracy (every seed)
    assert min(r["gap_late_minus_early_at_lambda_star"]) > 0
    # path length shrinks; folding is exact; Figure 1 of the paper
    assert r["average_path_length"] < r["average_path_length_dense"]
    assert r["fold_max_abs_error"] < 1e-9
    assert r["apl_figure1"] == pytest.approx([1024 / 257, 2.0])


def test_bad_parameter_stops_notebook(tmp_path):
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    with pytest.raises(papermill.PapermillExecutionError, match="WIDTH"):
        run_chapter(notebooks / f"{CHAPTER}.ipynb", {"QUICK": True, "WIDTH": 0},
                    tmp_path / "out.ipynb")
