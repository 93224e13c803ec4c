"""Rank, alignment and the conserved quantities of gradient flow (chapter 6).

Diagnostics of the low-rank implicit bias: Ji & Telgarsky 2019 ("Gradient
descent aligns the layers of deep linear networks", ICLR 2019, arXiv
1810.02032) show that gradient flow on the exponential or logistic loss of
linearly separable data drives every matrix of a deep linear network to rank 1
in direction, with consecutive layers aligned; Le & Jegelka 2022 ("Training
invariances and the low-rank phenomenon: beyond linear networks", ICLR 2022,
arXiv 2201.11968 v2) extend this to the linear layers after the last ReLU and
to the submatrices of stably active neurons. The engine is a set of
quantities that gradient flow conserves (``neuron_balancedness``,
``matrix_invariance``).

Matrices follow ``ntkbook.linear_tail``: ``W_l: (m_l, m_{l-1})``, so
``W_{l+1} W_l`` is defined; every function accepts leading batch axes (e.g.
training snapshots) and returns arrays.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["sigma_ratio", "stable_rank", "top_singular_vectors", "alignment",
           "stable_neurons", "submatrix", "neuron_balancedness", "matrix_invariance"]


def sigma_ratio(w):
    """``sigma_2(W) / sigma_1(W)`` for ``w: (..., m, n)`` with min(m, n) >= 2.

    0 exactly for a rank-1 matrix, 1 for a multiple of an orthogonal matrix.
    """
    if min(w.shape[-2:]) < 2:
        raise ValueError(f"w must have at least 2 rows and 2 columns, got {w.shape}")
    s = jnp.linalg.svd(w, compute_uv=False)
    return s[..., 1] / s[..., 0]


def stable_rank(w):
    """``||W||_F^2 / ||W||_2^2 = sum_k sigma_k^2 / sigma_1^2`` in [1, rank W]; ``w: (..., m, n)``."""
    s = jnp.linalg.svd(w, compute_uv=False)
    return jnp.sum(s ** 2, axis=-1) / s[..., 0] ** 2


def top_singular_vectors(w):
    """``(u_1, v_1)``: top left ``(..., m)`` and right ``(..., n)`` singular vectors of ``w``."""
    u, _, vt = jnp.linalg.svd(w, full_matrices=False)
    return u[..., :, 0], vt[..., 0, :]


def alignment(w_lower, w_upper):
    """``|<u_1(W_l), v_1(W_{l+1})>|`` for consecutive layers (``W_{l+1} W_l`` defined).

    Ji & Telgarsky 2019 (arXiv 1810.02032, Thm 2.2): tends to 1 for deep linear
    networks. ``w_lower: (..., m, n)``, ``w_upper: (..., k, m)`` -> ``(...,)``.
    """
    if w_lower.shape[-2] != w_upper.shape[-1]:
        raise ValueError(f"w_upper {w_upper.shape} cannot follow w_lower {w_lower.shape}")
    u, _ = top_singular_vectors(w_lower)
    _, v = top_singular_vectors(w_upper)
    return jnp.abs(jnp.sum(u * v, axis=-1))


def stable_neurons(preacts):
    """Neurons active (pre-activation > 0) on every example and every snapshot.

    Args:
      preacts: ``(..., n, m)`` pre-activations of one layer (leading axes,
        e.g. snapshots, are all required to be positive too).

    Returns:
      bool ``(m,)``.
    """
    a = jnp.asarray(preacts)
    if a.ndim < 2:
        raise ValueError(f"preacts must be (..., n, m), got shape {a.shape}")
    return np.asarray(jnp.all(a.reshape(-1, a.shape[-1]) > 0, axis=0))


def submatrix(w, rows=None, cols=None):
    """``W[rows][:, cols]`` with bool masks or index arrays (None keeps all); ``w: (..., m, n)``."""
    if rows is not None:
        w = w[..., np.asarray(rows), :]
    if cols is not None:
        w = w[..., np.asarray(cols)]
    return w


def neuron_balancedness(w_in, w_out):
    """Per-neuron ``||W_l[j, :]||^2 - ||W_{l+1}[:, j]||^2``: ``(..., m_l)``.

    Conserved by gradient flow at every neuron j of a ReLU (or linear) layer
    without skip connections, since relu(a) = relu'(a) a (Du, Hu, Lee 2018,
    arXiv 1806.00900, Thm 2.1).
    """
    return jnp.sum(w_in ** 2, axis=-1) - jnp.sum(w_out ** 2, axis=-2)


def matrix_invariance(w_in, w_out, neurons=None):
    """``W_{l+1}[:, S]^T W_{l+1}[:, S] - W_l[S, :] W_l[S, :]^T``: ``(..., |S|, |S|)``.

    Conserved by gradient flow when layer l is linear (S = all neurons;
    Arora, Cohen, Hazan 2018, arXiv 1802.06509, Thm 1) or when every neuron of
    S is active on every training example (Le & Jegelka 2022, the local
    invariance for stably activated neurons). Its diagonal is
    ``neuron_balancedness``.
    """
    w_in = submatrix(w_in, rows=neurons)
    w_out = submatrix(w_out, cols=neurons)
    return jnp.swapaxes(w_out, -1, -2) @ w_out - w_in @ jnp.swapaxes(w_in, -1, -2)
