"""Chapter 5 (nonlinear advantage) in quick mode: the results contract (the notebook asserts the claim)."""
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("05_nonlinear_advantage")
    check_results(r, ["dataset", "architectures", "acc_dense", "acc_linear", "acc_linearized_late",
                      "acc_linearized_early", "frac_linearized", "matched_gap", "matched_gap_by_difficulty",
                      "apl_residual", "apl_residual_dense", "average_path_length"])
    assert r["dataset"] == "mnist1d"
    assert {"gated_cnn", "gated_rescnn"} <= set(r["architectures"])
    assert set(r["matched_gap"]) == {"mean", "low", "high"}
    assert len(r["matched_gap_by_difficulty"]) >= 2
    assert r["apl_figure1"] == pytest.approx([1024 / 257, 2.0])
