"""Chapter 5 (nonlinear advantage) in quick mode: the results contract (the notebook asserts the claim)."""
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("05_nonlinear_advantage")
    check_results(r, ["acc_dense", "acc_linear", "acc_linearized_late", "acc_linearized_early",
                      "frac_linearized", "average_path_length"])
    assert r["apl_figure1"] == pytest.approx([1024 / 257, 2.0])
