"""Chapter 1 in quick mode: the results contract (the notebook asserts the claim)."""
import numpy as np
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("01_tangent_kernel")
    check_results(r, ["widths", "ntk_rel_error", "slope_ntk_error", "train_widths",
                      "linearization_gap", "slope_linearization_gap"])
    assert np.shape(r["ntk_rel_error"])[1] == len(r["widths"]) >= 3
