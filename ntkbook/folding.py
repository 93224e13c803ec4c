"""Folding linear units away: a pruned gated network as a smaller network.

After Mehmeti-Göpel and Disselhoff 2023 (arXiv 2211.17180): a unit whose
PReLU gate is 0 is the identity, so it can be merged into its neighbours.
With ``phi_s(z) = z + s * relu(-z)`` every quantity in a ``gated_mlp`` or
``gated_resmlp`` (``ntkbook.pruning``) is an affine function of the input and
of the features ``relu(-z)`` of the *non-linear* units only; ``fold`` carries
those affine maps forward layer by layer and returns a network that keeps just
the non-linear units (plus linear bypasses), ``folded_apply`` evaluates it.
The computation is done in numpy: the matrices are small and their shapes
change with every pruning pattern, so jax would compile each one.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from .models import Model

__all__ = ["Folded", "fold", "folded_apply", "num_params"]


class Folded(NamedTuple):
    """A network with only its non-linear units, linear units folded away.

    ``R_0 = x``; for l = 1..L: ``z_l = sum_{k<l} R_k A[l][k] + c[l]``,
    ``R_l = relu(-z_l)`` (width n_l = number of non-linear units of layer l);
    logits ``sum_{k<=L} R_k A[L+1][k] + c[L+1]``. ``A[l][k]`` has shape
    ``(n_k, n_l)``; ``A[l][k]`` for k < l - 1 are linear bypasses created by
    folding.
    """

    A: list
    c: list


def _affine_times(coef, const, W):
    """``(sum_k R_k coef[k] + const) @ W`` as new coefficients."""
    return [a @ W for a in coef], const @ W


def fold(model: Model, params) -> Folded:
    """Fold every linear unit (and the linear part of every PReLU) into its neighbours.

    Uses ``phi_s(z) = z + s * relu(-z)``: the identity part of every unit
    passes straight through as a linear map, so every quantity in the network
    is an affine function of the input and the features ``R_k = relu(-z_k[N_k])``
    of the non-linear units N_k (those with ``s != 0``). Coefficient matrices are
    carried forward layer by layer (for ``gated_mlp``:
    ``z_{l+1} = z_l W_{l+1} + R_l diag(s_{N}) W_{l+1}[N] + b_{l+1}``), and the rows
    of linear units vanish. Exact up to floating-point reassociation.

    Args:
      model: a ``gated_mlp`` or ``gated_resmlp``.
      params: its (unbatched) parameters.

    Returns:
      ``Folded``; evaluate with ``folded_apply``.
    """
    kind = model.config.get("kind")
    if kind not in ("gated_mlp", "gated_resmlp"):
        raise ValueError(f"model must be a gated_mlp or gated_resmlp, got kind={kind!r}")
    d = model.config["in_dim"]
    params = jax.tree.map(np.asarray, params)   # small matrices: numpy, no per-shape compilation
    keep = [np.flatnonzero(s != 0) for s in params["s"]]
    A, c = [], []
    if kind == "gated_mlp":
        layers = params["layers"]
        coef, const = [layers[0]["W"]], layers[0]["b"]                # z_1
        for l, idx in enumerate(keep):
            A.append([a[:, idx] for a in coef])
            c.append(const[idx])
            W, b = layers[l + 1]["W"], layers[l + 1]["b"]
            coef, const = _affine_times(coef, const, W)
            coef.append(params["s"][l][idx, None] * W[idx])
            const = const + b
    else:
        emb = params["embed"]
        h_coef, h_const = [emb["W"]], emb["b"]                        # stream h_0
        for l, (blk, idx) in enumerate(zip(params["blocks"], keep)):
            z_coef, z_const = _affine_times(h_coef, h_const, blk["W"])
            z_const = z_const + blk["b"]
            A.append([a[:, idx] for a in z_coef])
            c.append(z_const[idx])
            zv, zv_const = _affine_times(z_coef, z_const, blk["V"])
            h_coef = [h + v for h, v in zip(h_coef, zv)]
            h_coef.append(params["s"][l][idx, None] * blk["V"][idx])
            h_const = h_const + zv_const + blk["c"]
        coef, const = _affine_times(h_coef, h_const, params["out"]["W"])
        const = const + params["out"]["b"]
    A.append(coef)
    c.append(const)
    if len(A[0]) != 1 or A[0][0].shape[0] != d:
        raise AssertionError("internal: first layer must read the input only")
    return Folded(A, c)


def folded_apply(folded: Folded, x):
    """Evaluate a ``Folded`` network: ``x (n, d) -> (n, C)`` logits."""
    feats = [x]
    for A_l, c_l in zip(folded.A[:-1], folded.c[:-1]):
        z = sum(r @ a for r, a in zip(feats, A_l)) + c_l
        feats.append(jax.nn.relu(-z))
    return sum(r @ a for r, a in zip(feats, folded.A[-1])) + folded.c[-1]


def num_params(tree) -> int:
    """Number of scalars in a pytree (e.g. ``params`` or a ``Folded``)."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(tree)))
