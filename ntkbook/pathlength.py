"""Average path length: how many non-linear units a path through a network meets.

Mehmeti-Göpel and Disselhoff 2023, "Nonlinear Advantage: Trained Networks
Might Not Be As Complex as You Think" (ICML, arXiv 2211.17180, Sec. 4 and
Fig. 1). A network is a DAG of units (nodes in topological order,
``adjacency[u, v]`` the weight of edge u -> v); the average path length
(APL) is the expected number of non-linear units on an input-to-output
path, with paths drawn uniformly (unnormalised) or with equal weight for
every branch at a residual sum (normalised). ``network_path_length`` builds
the graph of a gated network (``ntkbook.pruning``, ``ntkbook.convnets``) and
marks the units (MLPs) or channels (CNNs) whose gate is not 0 as non-linear.
"""
from __future__ import annotations

import numpy as np

__all__ = ["mlp_graph", "resmlp_graph", "figure1_graph", "average_path_length",
           "network_graph", "network_path_length"]


def mlp_graph(in_dim: int, widths, num_classes: int):
    """Unit graph of an MLP: nodes input, hidden layers, outputs; dense edges.

    Returns:
      ``(adjacency (N, N), hidden)`` where ``adjacency[u, v] = 1`` for an edge
      u -> v (nodes in topological order) and ``hidden`` is a list of index
      arrays, one per hidden layer, so the caller can mark non-linear units.
    """
    sizes = [in_dim] + list(widths) + [num_classes]
    starts = np.cumsum([0] + sizes)
    adj = np.zeros((starts[-1], starts[-1]))
    for i in range(len(sizes) - 1):
        adj[starts[i]:starts[i + 1], starts[i + 1]:starts[i + 2]] = 1.0
    hidden = [np.arange(starts[i], starts[i + 1]) for i in range(1, len(sizes) - 1)]
    return adj, hidden


def resmlp_graph(in_dim: int, width: int, depth: int, num_classes: int):
    """Unit graph of ``gated_resmlp``, with branch weights for normalised APL.

    Nodes: inputs, stream units ``h_0 .. h_L`` (m each, linear sums), branch
    units of each block (m each, the gated ones), outputs. Edges: dense
    ``h_{l-1} -> branch_l`` (weight 1), dense ``branch_l -> h_l`` (weight
    ``1/m`` each, so the branch as a whole weighs 1) and the identity skip
    ``h_{l-1}[j] -> h_l[j]`` (weight 1): at every residual sum the skip and
    the branch carry equal weight, as in the paper's Fig. 1.

    Returns:
      ``(adjacency (N, N), hidden)``; ``hidden[l]`` indexes block l's units.
    """
    n = in_dim + (depth + 1) * width + depth * width + num_classes
    adj = np.zeros((n, n))
    inp = np.arange(in_dim)
    nxt = in_dim
    stream = np.arange(nxt, nxt + width)
    nxt += width
    adj[np.ix_(inp, stream)] = 1.0
    hidden = []
    for _ in range(depth):
        branch = np.arange(nxt, nxt + width)
        new = np.arange(nxt + width, nxt + 2 * width)
        nxt += 2 * width
        adj[np.ix_(stream, branch)] = 1.0
        adj[np.ix_(branch, new)] = 1.0 / width
        adj[stream, new] = 1.0
        hidden.append(branch)
        stream = new
    adj[np.ix_(stream, np.arange(nxt, nxt + num_classes))] = 1.0
    return adj, hidden


def figure1_graph():
    """The graph of Fig. 1 of Mehmeti-Göpel & Disselhoff (arXiv 2211.17180).

    One input node, four fully connected non-linear layers of 4 units, one
    output node, and a residual edge from input to output: 4^4 + 1 = 257
    paths. Branch weights as in ``resmlp_graph`` (the skip weighs as much as
    the whole 4-layer branch).

    Returns:
      ``(adjacency (18, 18), nonlinear (18,))``.
    """
    adj, hidden = mlp_graph(1, [4, 4, 4, 4], 1)
    adj[hidden[-1], -1] = 1.0 / 4
    adj[0, -1] = 1.0
    nonlinear = np.zeros(adj.shape[0])
    nonlinear[np.concatenate(hidden)] = 1.0
    return adj, nonlinear


def average_path_length(adjacency, nonlinear, *, normalized: bool = True) -> float:
    """Average number of non-linear units on an input-to-output path of a DAG.

    ``APL = sum_paths P(path) * #{non-linear units on path}`` over all paths
    from a source (no incoming edge) to a sink (no outgoing edge)
    (Mehmeti-Göpel & Disselhoff 2023, arXiv 2211.17180, Sec. 4 and Fig. 1).

    * ``normalized=False``: ``P`` uniform over paths (edge multiplicity 1).
      Computed by forward dynamic programming: path counts
      ``N(v) = sum_u N(u)`` and summed counts ``S(v) = sum_u S(u) + c_v N(v)``;
      ``APL = sum_sinks S / sum_sinks N``.
    * ``normalized=True``: a backward random walk from a uniformly chosen sink
      steps to predecessor u of v with probability ``A[u, v] / sum_u' A[u', v]``;
      ``E(v) = c_v + sum_u P(u | v) E(u)`` and APL is the mean of E over sinks.
      With ``resmlp_graph`` weights this gives every branch of a residual sum
      probability 1/2 and is uniform over units inside a branch.

    On the paper's Fig. 1 graph: 257 paths, unnormalised APL 1024/257,
    normalised APL 2.

    Args:
      adjacency: ``(N, N)`` non-negative edge weights, ``A[u, v] > 0`` for an
        edge u -> v; nodes in topological order (A strictly upper triangular).
      nonlinear: ``(N,)`` count ``c_v`` of node v (1 for an active
        non-linearity, 0 for a linear unit or an input/sum node).
      normalized: which path measure (above).

    Returns:
      The APL (a float).
    """
    adj = np.asarray(adjacency, dtype=float)
    c = np.asarray(nonlinear, dtype=float)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adjacency must be a square matrix, got shape {adj.shape}")
    if c.shape != (adj.shape[0],):
        raise ValueError(f"nonlinear must have shape ({adj.shape[0]},), got {c.shape}")
    if np.any(adj < 0) or np.any(np.tril(adj) != 0):
        raise ValueError("adjacency must be non-negative and strictly upper triangular "
                         "(nodes in topological order)")
    has_in, has_out = adj.sum(0) > 0, adj.sum(1) > 0
    sinks = np.flatnonzero(~has_out & has_in)
    if normalized:
        col = adj.sum(0)
        prob = np.divide(adj, col, out=np.zeros_like(adj), where=col > 0)
        expected = np.zeros_like(c)
        for v in range(len(c)):
            expected[v] = c[v] + prob[:, v] @ expected
        return float(expected[sinks].mean())
    edge = (adj > 0).astype(float)
    count, total = np.zeros_like(c), np.zeros_like(c)
    for v in range(len(c)):
        count[v] = 1.0 if not has_in[v] else edge[:, v] @ count
        total[v] = edge[:, v] @ total + c[v] * count[v]
    return float(total[sinks].sum() / count[sinks].sum())


def network_graph(config: dict):
    """Unit graph of a gated network from its ``Model.config``.

    ``gated_mlp``: ``mlp_graph`` of its units; ``gated_resmlp``: ``resmlp_graph``.
    For the CNNs of ``ntkbook.convnets`` the nodes are *channels* (the paper
    linearises channels): ``gated_cnn`` is ``mlp_graph(1, [channels] * depth,
    C)``, ``gated_rescnn`` is ``resmlp_graph(1, channels, depth, C)`` (the
    stem's channels form the stream ``h_0``).

    Returns:
      ``(adjacency, hidden)`` as ``mlp_graph``.
    """
    kind = config.get("kind")
    if kind == "gated_mlp":
        return mlp_graph(config["in_dim"], [config["width"]] * config["depth"],
                         config["num_classes"])
    if kind == "gated_resmlp":
        return resmlp_graph(config["in_dim"], config["width"], config["depth"],
                            config["num_classes"])
    if kind == "gated_cnn":
        return mlp_graph(1, [config["channels"]] * config["depth"], config["num_classes"])
    if kind == "gated_rescnn":
        return resmlp_graph(1, config["channels"], config["depth"], config["num_classes"])
    raise ValueError(f"config must be of a gated network (gated_mlp, gated_resmlp, gated_cnn, "
                     f"gated_rescnn), got kind={kind!r}")


def network_path_length(config: dict, params, *, normalized: bool = True):
    """APL of a gated network whose units (channels) with gate 0 are linear.

    Builds ``network_graph(config)``, marks the units with ``s != 0`` as
    non-linear and calls ``average_path_length``.

    Args:
      config: the model's ``config``.
      params: parameters with the gates in ``params["s"]``, optionally with
        leading batch axes on the gates (e.g. ``(B, m)``).
      normalized: which path measure (see ``average_path_length``).

    Returns:
      A float, or an array of the gates' leading batch shape.
    """
    adj, hidden = network_graph(config)
    active = np.stack([np.asarray(s) != 0 for s in params["s"]], axis=-2)   # (..., L, m)
    batch = active.shape[:-2]
    out = np.empty(batch)
    for i in np.ndindex(batch):
        c = np.zeros(adj.shape[0])
        for l, idx in enumerate(hidden):
            c[idx] = active[i + (l,)]
        out[i] = average_path_length(adj, c, normalized=normalized)
    return float(out) if out.ndim == 0 else out
