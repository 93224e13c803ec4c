"""Chapter 4 (ResNet spectrum) in quick mode: the results contract (the notebook asserts the claim)."""
import pytest

from conftest import check_results

pytestmark = pytest.mark.notebook


def test_results_contract(quick_results):
    r = quick_results("04_resnet_spectrum")
    check_results(r, ["decay_exponent", "depths", "alphas", "asymptotic_ratio_spread", "odd_k_positive"])
    assert set(r["decay_exponent"]) >= {"resnet_d2", "resnet_d3", "fc_d2", "fc_d3",
                                        "laplace_d2", "laplace_d3"}
    assert len(r["alphas"]) == len(r["gammas"])
    assert all(len(a) == len(r["depths"]) for a in r["alphas"])
    assert isinstance(r["asymptotic_ratio_spread"], float) and r["asymptotic_ratio_spread"] >= 0
    assert r["odd_k_positive"] is True
    for key in ("resnet_d2", "resnet_d3", "fc_d3", "laplace_d3"):
        assert set(r["asymptotic_ratio"][key]) == {"even", "odd"}
        assert set(r["asymptotic_ratio"][key]["odd"]) == {"constant", "spread", "spread_previous", "tolerance"}
    assert all(len(c["even"]) == len(r["depths"]) for c in r["power_law_constants_d3"].values())
