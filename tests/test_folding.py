"""Tests for ntkbook.folding: a folded network computes the same function.

Tolerances (float64, session runs with JAX_ENABLE_X64=1): folding reorders
sums of O(10)-sized products over a few layers, so 1e-10 absolute on logits
of size O(1-10) leaves four orders of margin over the ~1e-14 seen.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import folding as fo
from ntkbook import gates as ga
from ntkbook import pruning as pr

FOLD_ATOL = 1e-10


def _random_gates(params, key, frac_zero):
    gates = []
    for l, s in enumerate(params["s"]):
        k1, k2 = jax.random.split(jax.random.fold_in(key, l))
        g = jax.random.uniform(k1, s.shape, minval=-0.5, maxval=1.5)
        gates.append(jnp.where(jax.random.uniform(k2, s.shape) < frac_zero, 0.0, g))
    return {**params, "s": gates}


@pytest.mark.parametrize("factory", [pr.gated_mlp, pr.gated_resmlp])
@pytest.mark.parametrize("frac_zero", [0.0, 0.6, 1.0])
def test_fold_is_exact(factory, frac_zero):
    model = factory(2, 7, 3, 3)
    key = jax.random.PRNGKey(3)
    params = _random_gates(model.init_fn(key), jax.random.fold_in(key, 1), frac_zero)
    x = 2 * jax.random.normal(jax.random.fold_in(key, 2), (50, 2))
    folded = fo.fold(model, params)
    np.testing.assert_allclose(fo.folded_apply(folded, x), model.apply_fn(params, x),
                               atol=FOLD_ATOL, rtol=0)
    widths = [a[0].shape[1] for a in folded.A[:-1]]
    assert widths == [int(jnp.sum(s != 0)) for s in params["s"]]


def test_fold_all_linear_is_one_affine_map():
    model = pr.gated_mlp(2, 5, 3, 3)
    params = ga.linear_params(model.init_fn(jax.random.PRNGKey(0)))
    folded = fo.fold(model, params)
    assert fo.num_params(folded) == 2 * 3 + 3      # a single (2, 3) matrix and a bias


def test_fold_rejects_other_models():
    import ntkbook as nk

    with pytest.raises(ValueError, match="gated_mlp"):
        fo.fold(nk.mlp(2, 4, 1), {})
