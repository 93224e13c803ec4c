"""Chapter 4 (ResNet spectrum) in quick mode: the claim from its results JSON."""
from pathlib import Path

import numpy as np
import papermill
import pytest

from ntkbook.__main__ import run_chapter

pytestmark = pytest.mark.notebook
CHAPTER = "04_resnet_spectrum"


def test_resnet_spectrum_claim(quick_results):
    r = quick_results(CHAPTER)
    exponents = r["decay_exponent"]
    assert set(exponents) >= {"resnet_d2", "resnet_d3", "fc_d2", "fc_d3", "laplace_d2", "laplace_d3"}
    assert r["depths"][0] == 1 and r["depths"][-1] >= 64
    assert len(r["alphas"]) == len(r["gammas"]) and all(len(a) == len(r["depths"]) for a in r["alphas"])
    # 1. eigenvalues decay like k^-d, the same for ResNTK, FC-NTK and Laplace
    for d in (2, 3):
        trio = [exponents[f"{name}_d{d}"] for name in ("resnet", "fc", "laplace")]
        assert all(abs(p + d) <= 0.1 * d for p in trio), trio
        assert max(trio) - min(trio) <= 0.1, trio
    assert r["min_eigenvalue"] > -1e-12
    # 2. spherical harmonics diagonalise the kernel
    assert r["circulant_error"] < 1e-8 and r["dft_offdiag"] < 1e-10
    assert r["circle_eig_error"] < 1e-4
    assert r["sphere_block_spread"] < 0.01 and r["sphere_block_error"] < 1e-4
    # 3. spiky with depth for gamma < 1/2 (and FC-NTK), stable for gamma >= 1/2
    for name, c in r["spikiness"].items():
        c = np.asarray(c)
        gamma = 0.0 if name == "fc" else float(name.split("=")[1])
        if name == "fc" or gamma < 0.5:
            assert c[-1] / c[0] >= 2
            assert abs(r["spikiness_growth"][name] - r["spikiness_growth_predicted"][name]) <= 0.2
        else:
            assert c.max() / c.min() <= 2 and abs(r["spikiness_growth"][name]) <= 0.1
    assert r["spikiness_closed_form_error"] < 1e-4
    # 4. the empirical NTK of finite ResNets approaches the analytic ResNTK
    err = np.asarray(r["median_ntk_rel_error"])
    assert r["slope_ntk_error"] < -0.2 and err[-1] < 0.6 * err[0] and err[-1] < 0.25
    assert r["quick"] is True


@pytest.mark.parametrize("name, value", [("GAMMAS", [0.75, 1.0]), ("KMAX", 16)])
def test_bad_parameter_stops_notebook(tmp_path, name, value):
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    with pytest.raises(papermill.PapermillExecutionError, match=name):
        run_chapter(notebooks / f"{CHAPTER}.ipynb", {"QUICK": True, name: value},
                    tmp_path / "out.ipynb")
