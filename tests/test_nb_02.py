"""Chapter 2 (Hessian scaling) in quick mode: the results contract (the notebook asserts the claim)."""
import numpy as np
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("02_hessian_scaling")
    check_results(r, ["widths", "hessian_norm", "slope_hessian", "grad_norm", "slope_grad",
                      "ntk_change", "slope_ntk_change", "slope_loss_hessian_residual"])
    assert np.shape(r["hessian_norm"])[1] == len(r["widths"])
    assert np.shape(r["ntk_change"])[1] == len(r["train_widths"])
    assert {c["name"] for c in r["claims"]} >= {"hessian_l1", "gradient_flat_l1",
                                                 "kernel_change", "loss_hessian_residual"}
