"""Chapter 2 (Hessian scaling): the claim, checked from the quick-mode results JSON."""
import papermill
import pytest

pytestmark = pytest.mark.notebook

CHAPTER = "02_hessian_scaling"


def test_hessian_shrinks_gradient_flat_kernel_constant(quick_results):
    res = quick_results(CHAPTER)
    assert res["slope_hessian"] <= -0.3                     # tanh, one hidden layer
    for name in ("tanh, L=2", "tanh, L=3"):
        assert -0.7 <= res["by_arch"][name]["slope_hessian"]["exponent"] <= -0.35
    for arch in res["by_arch"].values():
        assert abs(arch["slope_grad"]["exponent"]) <= 0.1
    assert abs(res["slope_grad"]) <= 0.1
    assert res["relu_max_deviation"] < 1e-6
    assert res["slope_ntk_change"] <= -0.4
    assert res["slope_linearization_gap"] <= -0.4
    assert max(max(row) for row in res["loss_ratio"]) < 1e-2
    assert res["loss_hessian_vs_gauss_newton"] < 0.05
    assert res["slope_path_sup_hessian"] <= -0.3
    assert res["resnet"]["slope_hessian"]["exponent"] <= -0.3
    assert res["resnet"]["slope_hessian_over_grad"]["exponent"] <= -0.4
    if res["resnet"]["slope_ntk_change"] is not None:      # trained in full mode only
        assert res["resnet"]["slope_ntk_change"]["exponent"] <= -0.4
    assert len(res["hessian_norm"][0]) == len(res["widths"])
    assert len(res["ntk_change"][0]) == len(res["train_widths"])


def test_bad_parameter_names_itself(tmp_path):
    from ntkbook.__main__ import NOTEBOOKS, run_chapter

    with pytest.raises(papermill.PapermillExecutionError, match="NUM_STEPS"):
        run_chapter(NOTEBOOKS / f"{CHAPTER}.ipynb", {"QUICK": True, "NUM_STEPS": -5},
                    tmp_path / "out.ipynb")
