"""Chapter 3 in quick mode: the results contract (the notebook asserts the claim)."""
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("03_nonlinear_last_layer")
    check_results(r, ["widths", "hessian_norm", "slope_hessian", "ntk_change",
                      "slope_ntk_change", "loss_ratio", "weight_distance",
                      "slope_bottleneck_ntk_change"])
    assert len(r["hessian_norm"]) == len(r["widths"])
    assert len(r["ntk_change"]) == len(r["train_widths"])
    assert sorted(r["weight_distance"]) == ["linear", "sigmoid"]
    assert abs(r["predicted_plateau"] - 0.5904) < 1e-4     # 1 - (0.16/0.25)^2
