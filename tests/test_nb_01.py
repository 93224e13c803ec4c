"""Chapter 1 in quick mode: the NTK converges like m^-1/2; GD tracks its linearisation."""
import numpy as np
import pytest

pytestmark = pytest.mark.notebook


def test_claim_reproduces(quick_results):
    r = quick_results("01_tangent_kernel")
    assert abs(r["slope_ntk_error"] + 0.5) < 0.15
    med = np.median(np.asarray(r["ntk_rel_error"]), axis=0)
    assert np.all(np.diff(med) < 0)
    assert r["slope_linearization_gap"] < -0.3
    assert max(np.max(r["final_loss_network"]), np.max(r["final_loss_linearized"])) < 1e-3
    assert r["quick"] is True and len(r["widths"]) >= 3
