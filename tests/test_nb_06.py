"""Chapter 6 (low rank) in quick mode: the results contract (the notebook asserts the claim)."""
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("06_low_rank")
    check_results(r, ["sigma_ratio_linear_tail", "sigma_ratio_linear_tail_initial",
                      "sigma_ratio_deep_linear", "sigma_ratio_stable_submatrix",
                      "sigma_ratio_relu_full", "direction_cosine", "margin_monotone_fraction"])
    assert set(r["sigma_ratio_linear_tail"]) == set(r["sigma_ratio_linear_tail_initial"])
