"""Chapter 6 (low rank) in quick mode: the claim, read from its results JSON."""
from pathlib import Path

import papermill
import pytest

from ntkbook.__main__ import run_chapter

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

CHAPTER = "06_low_rank"


@pytest.fixture(scope="module")
def results(quick_results):
    return quick_results(CHAPTER)


def test_linear_tail_collapses_to_rank_one(results):
    final, initial = results["sigma_ratio_linear_tail"], results["sigma_ratio_linear_tail_initial"]
    assert set(final) == set(initial) and len(final) >= 2
    for name, value in final.items():
        assert value < 0.1 and value < initial[name] / 5, (name, initial[name], value)
    for variant, ratios in results["sigma_ratio_linear_tail_variants"].items():
        assert max(ratios.values()) < 0.1, (variant, ratios)
    assert min(results["alignment_tail"].values()) > 0.99


def test_deep_linear_collapses(results):
    assert max(results["sigma_ratio_deep_linear"].values()) < 0.1


def test_relu_layers_stay_full_rank_but_stable_rows_collapse(results):
    assert min(results["sigma_ratio_relu_full"].values()) > 0.3
    stable = results["sigma_ratio_stable_submatrix"]
    assert results["num_stable"] >= 2
    for name, value in stable.items():
        assert value < results["sigma_ratio_stable_submatrix_initial"][name] / 3, (name, value)
        assert value < results["sigma_ratio_relu_full"]["W1 (stable-neuron net)"] / 5
    drift = results["invariant_drift"]
    assert drift["drift_full"] > 5 * max(drift["drift_balancedness"], drift["drift_stable"])


def test_squared_loss_does_not_collapse(results):
    for run, ratios in results["sigma_ratio_squared"].items():
        assert min(ratios.values()) > 0.3, (run, ratios)


def test_bad_parameter_is_named(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="ETA"):
        run_chapter(NOTEBOOKS / f"{CHAPTER}.ipynb", {"QUICK": True, "ETA": -1.0},
                    tmp_path / "bad.ipynb")
