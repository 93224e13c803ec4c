"""Tests for ntkbook.pathlength: average path length on graphs computed by hand.

Closed forms are exact up to float round-off (1e-12).
"""
import numpy as np
import pytest

from ntkbook import pathlength as pl

EXACT = 1e-12


def test_apl_paper_figure1():
    """Fig. 1 of arXiv 2211.17180: 257 paths; 1/257 each unnormalised, skip 1/2 normalised."""
    adj, nonlinear = pl.figure1_graph()
    assert adj.shape == (18, 18)
    assert pl.average_path_length(adj, nonlinear, normalized=False) == pytest.approx(1024 / 257, abs=EXACT)
    assert pl.average_path_length(adj, nonlinear, normalized=True) == pytest.approx(2.0, abs=EXACT)


def test_apl_chain_and_diamond_by_hand():
    # chain in -> a -> b -> out with a non-linear, b linear: every path meets 1
    adj = np.zeros((4, 4)); adj[0, 1] = adj[1, 2] = adj[2, 3] = 1
    assert pl.average_path_length(adj, [0, 1, 0, 0], normalized=False) == pytest.approx(1.0)
    # diamond in -> {a, b} -> out, only a non-linear, plus a skip in -> out:
    # 3 paths with counts 1, 0, 0 -> 1/3; normalised with weights a:1, b:1, skip:2
    # -> P(a) = 1/4 -> 1/4
    adj = np.zeros((4, 4)); adj[0, 1] = adj[0, 2] = adj[1, 3] = adj[2, 3] = 1; adj[0, 3] = 2
    assert pl.average_path_length(adj, [0, 1, 0, 0], normalized=False) == pytest.approx(1 / 3)
    assert pl.average_path_length(adj, [0, 1, 0, 0], normalized=True) == pytest.approx(1 / 4)


def test_apl_mlp_is_sum_of_layer_fractions():
    adj, hidden = pl.mlp_graph(2, [4, 5, 3], 2)
    c = np.zeros(adj.shape[0])
    c[hidden[0][:1]] = 1; c[hidden[1][:5]] = 1; c[hidden[2][:0]] = 1
    expected = 1 / 4 + 1 + 0
    for normalized in (False, True):
        assert pl.average_path_length(adj, c, normalized=normalized) == pytest.approx(expected)


def test_apl_residual_mlp_normalised_vs_unnormalised():
    width, depth = 3, 2
    adj, hidden = pl.resmlp_graph(2, width, depth, 2)
    c = np.zeros(adj.shape[0]); c[np.concatenate(hidden)] = 1
    # normalised: each block's branch taken with prob 1/2 -> depth / 2
    assert pl.average_path_length(adj, c, normalized=True) == pytest.approx(depth / 2)
    # unnormalised, by hand: per stream unit, N_l = N_{l-1} (1 + m^2) paths, of
    # which N_{l-1} m^2 go through the branch -> APL = depth * m^2 / (1 + m^2)
    m2 = width ** 2
    assert pl.average_path_length(adj, c, normalized=False) == pytest.approx(depth * m2 / (1 + m2))


def test_apl_validation():
    with pytest.raises(ValueError, match="adjacency"):
        pl.average_path_length(np.ones((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="nonlinear"):
        pl.average_path_length(np.triu(np.ones((3, 3)), 1), np.zeros(2))


def test_network_path_length_of_gated_networks():
    """Dense: an L-layer plain network has APL L, a residual one L/2 (half the walk skips each block)."""
    import jax
    import jax.numpy as jnp

    from ntkbook import convnets, pruning

    for factory, args, dense in [(pruning.gated_mlp, (2, 4, 3, 3), 3.0),
                                 (pruning.gated_resmlp, (2, 4, 2, 3), 1.0),
                                 (convnets.gated_cnn, (40, 4, 3, 10), 3.0),
                                 (convnets.gated_rescnn, (40, 4, 4, 10), 2.0)]:
        model = factory(*args)
        params = model.init_fn(jax.random.PRNGKey(0))
        assert pl.network_path_length(model.config, params) == pytest.approx(dense, abs=EXACT)
    model = pruning.gated_mlp(2, 4, 3, 3)
    params = {**model.init_fn(jax.random.PRNGKey(0)),
              "s": [jnp.array([1.0, 0, 0, 0]), jnp.zeros(4), jnp.ones(4)]}
    assert pl.network_path_length(model.config, params) == pytest.approx(1 / 4 + 0 + 1, abs=EXACT)
    batched = jax.vmap(model.init_fn)(jax.random.split(jax.random.PRNGKey(1), 2))
    np.testing.assert_allclose(pl.network_path_length(model.config, batched), [3.0, 3.0])
    res = convnets.gated_rescnn(40, 4, 2, 10)
    half = {**res.init_fn(jax.random.PRNGKey(0)), "s": [jnp.array([1.0, 1, 0, 0]), jnp.zeros(4)]}
    assert pl.network_path_length(res.config, half) == pytest.approx(0.5 * 0.5, abs=EXACT)
    with pytest.raises(ValueError, match="kind"):
        pl.network_graph({"kind": "mlp"})
