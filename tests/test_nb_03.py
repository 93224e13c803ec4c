"""Chapter 3 in quick mode: a non-linear output breaks linearity, GD still converges."""
import papermill
import pytest

from conftest import NOTEBOOKS

CHAPTER = "03_nonlinear_last_layer"


@pytest.mark.notebook
def test_nonlinear_output_breaks_linearity_but_gd_converges(quick_results):
    r = quick_results(CHAPTER)
    for key in ("widths", "hessian_norm", "slope_hessian", "ntk_change", "slope_ntk_change",
                "loss_ratio"):
        assert key in r, key
    assert len(r["hessian_norm"]) == len(r["widths"])
    assert len(r["ntk_change"]) == len(r["train_widths"])
    # Hessian: flat with a softplus output, decaying with a linear output
    assert abs(r["slope_hessian"]) < 0.15
    assert abs(r["slope_rank_one_term"]) < 0.15
    assert r["slope_hessian_linear_output"] < -0.3
    assert r["slope_linear_term"] < -0.3
    assert r["slope_hessian_bottleneck"] > -0.15
    # kernel change: O(1) plateau matching 1 - (0.16/0.25)^2 vs vanishing with width
    assert abs(r["predicted_plateau"] - 0.5904) < 1e-12
    assert min(r["ntk_change"]) > 0.4
    assert abs(r["ntk_change"][-1] - r["predicted_plateau"]) < 0.05
    assert abs(r["slope_ntk_change"]) < 0.15
    assert r["slope_ntk_change_linear_output"] < -0.5
    # optimisation: the loss falls by >= 10^3 at every width and seed; PL constant bounded below
    assert r["loss_ratio"] < 1e-4
    assert r["lambda_min_ratio_sigmoid"] > 0.2


@pytest.mark.notebook
@pytest.mark.parametrize("name,value", [("NUM_SEEDS", 0), ("TRAIN_WIDTHS", [64, 129, 256])])
def test_bad_parameter_stops_the_notebook(tmp_path, name, value):
    from ntkbook.__main__ import run_chapter

    with pytest.raises(papermill.PapermillExecutionError, match=name):
        run_chapter(NOTEBOOKS / f"{CHAPTER}.ipynb", {"QUICK": True, name: value},
                    tmp_path / "out.ipynb")
