"""Gated PReLU units and the proximal sparsity prior on their number, as an optax transform.

After Mehmeti-Göpel and Disselhoff 2023, "Nonlinear Advantage: Trained
Networks Might Not Be As Complex as You Think" (ICML, arXiv 2211.17180).

**Gated units.** Every hidden unit or channel j applies a PReLU written as the
identity plus a gated ReLU,

    phi_s(z) = z + s * relu(-z) = max(z, 0) + (1 - s) * min(z, 0),

so the gate ``s = 1 - a`` (``a`` the PReLU negative slope) interpolates
between ReLU (s = 1) and the identity (s = 0). A unit with ``s == 0`` is
exactly linear. Gated models keep their gates in ``params["s"]``, a list of
``(width,)`` vectors (one per gated layer), so the prior touches nothing else.

**Sparsity prior.** ``lam * sum_j |s_j|`` on ``0 <= s <= 1`` (the convex
relaxation of ``lam * #{j: s_j != 0}``) is applied by an exact
proximal-gradient step on the gates,

    s <- prox_gate(s - eta * dL/ds, eta * lam) = clip(s - eta * dL/ds - eta * lam, 0, 1),

while the other weights take Adam steps (``gated_optimizer``). Unlike a
subgradient step the prox sets gates to exactly 0, and a gate the prior has
set to 0 stays there (the unit is pruned).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["gated_act", "soft_threshold", "prox_gate", "ProxGatesState", "prox_gates",
           "gated_optimizer", "linear_params", "fraction_linear", "nonlinear_per_layer",
           "cross_entropy", "accuracy", "best_accuracy_at", "largest_fraction_within"]


def gated_act(z, s):
    """Gated PReLU ``phi_s(z) = z + s * relu(-z)`` (s = 1: ReLU, s = 0: identity).

    Args:
      z: ``(..., width)`` pre-activations (units or channels on the last axis).
      s: ``(width,)`` gates, one per unit; PReLU slope ``a = 1 - s``.
    """
    return z + s * jax.nn.relu(-z)


def soft_threshold(s, threshold):
    """Proximal operator of ``threshold * |s|``: ``sign(s) * max(|s| - threshold, 0)``.

    ``argmin_u  (1/2)(u - s)^2 + threshold * |u|`` elementwise (Parikh & Boyd
    2014, Proximal Algorithms, Sec. 6.5.2). Entries with ``|s| <= threshold``
    become exactly 0.
    """
    return jnp.sign(s) * jnp.maximum(jnp.abs(s) - threshold, 0.0)


def prox_gate(u, threshold):
    """Prox of ``threshold * |s| + indicator(0 <= s <= 1)``: ``clip(u - threshold, 0, 1)``.

    Equal to ``clip(soft_threshold(u, threshold), 0, 1)``: the L1 prior keeps
    the gate in ``[0, 1]``, i.e. the PReLU slope ``a = 1 - s`` between 0 (ReLU)
    and 1 (identity).
    """
    return jnp.clip(soft_threshold(u, threshold), 0.0, 1.0)


class ProxGatesState(NamedTuple):
    """State of ``prox_gates``: ``mask``, 1 for a gate still free, 0 for a pruned one."""

    mask: list


def prox_gates(learning_rate, lam) -> optax.GradientTransformation:
    """Proximal gradient on a list of gates: the sparsity prior as an optax transform.

    ``s_new = prox_gate(s - learning_rate * g, learning_rate * lam) * mask`` and
    the update is ``s_new - s``. ``mask`` starts as ``s != 0`` (gates that are 0
    at ``init``, e.g. of an all-linear network, stay 0) and a gate that a step
    with ``lam > 0`` sets to 0 is removed from it (pruned for good); with
    ``lam = 0`` a gate clipped at 0 may open again.

    Args:
      learning_rate: step size eta of the gates (may be traced).
      lam: prior strength lam >= 0 (may be traced, e.g. vmapped over a grid).

    Returns:
      ``optax.GradientTransformation`` over a pytree of gates (it needs ``params``).
    """
    def init_fn(gates):
        return ProxGatesState([(g != 0).astype(g.dtype) for g in jax.tree.leaves(gates)])

    def update_fn(grads, state, gates):
        if gates is None:
            raise ValueError("prox_gates needs the current gates: call update(grads, state, params)")
        leaves, tree = jax.tree.flatten(gates)
        new = [prox_gate(s - learning_rate * g, learning_rate * lam) * m
               for s, g, m in zip(leaves, jax.tree.leaves(grads), state.mask)]
        mask = [jnp.where((s == 0) & (lam > 0), 0.0, m).astype(m.dtype)
                for s, m in zip(new, state.mask)]
        updates = jax.tree.unflatten(tree, [n - s for n, s in zip(new, leaves)])
        return updates, ProxGatesState(mask)

    return optax.GradientTransformation(init_fn, update_fn)


def _labels(params):
    return {k: jax.tree.map(lambda _: "gates" if k == "s" else "weights", v)
            for k, v in params.items()}


def gated_optimizer(learning_rate, *, gate_lr, lam, max_norm: float = 1.0):
    """Adam on the weights (gradients clipped to global norm ``max_norm``), ``prox_gates`` on ``params["s"]``.

    The objective is ``L(params) + lam * sum_j |s_j|`` with ``0 <= s <= 1``
    (Mehmeti-Göpel & Disselhoff 2023, arXiv 2211.17180, Sec. 3): the gates
    take exact proximal-gradient steps of size ``gate_lr``, everything else
    Adam steps of size ``learning_rate``.

    Args:
      learning_rate: Adam step size of the weights.
      gate_lr: gradient step size of the gates.
      lam: prior strength (may be traced).
      max_norm: global-norm clipping of the weight gradients.

    Returns:
      ``optax.GradientTransformation`` for a params dict with the gates in ``"s"``.
    """
    weights = optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(learning_rate))
    return optax.multi_transform({"weights": weights, "gates": prox_gates(gate_lr, lam)},
                                 _labels)


def linear_params(params):
    """The same network with every unit linear: all gates set to 0."""
    return {**params, "s": [jnp.zeros_like(s) for s in params["s"]]}


def nonlinear_per_layer(params):
    """``(..., L)`` number of non-linear units (gate != 0) in each gated layer."""
    return jnp.stack([jnp.sum(s != 0, axis=-1) for s in params["s"]], axis=-1)


def fraction_linear(params, *, threshold: float = 0.0):
    """Fraction of gated units with ``|s| <= threshold`` (default: exactly linear).

    Leading batch axes of the gates are kept: gates ``(B, m)`` give ``(B,)``.
    """
    s = jnp.concatenate([jnp.abs(g) <= threshold for g in params["s"]], axis=-1)
    return jnp.mean(s, axis=-1)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy ``-(1/n) sum_i log softmax(logits_i)[labels_i]``.

    Args:
      logits: ``(n, C)``.
      labels: ``(n,)`` integer classes.
    """
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def accuracy(apply_fn: Callable, params, x, labels):
    """Fraction of ``x (n, d)`` whose arg-max logit is the label (vmap it over runs)."""
    return jnp.mean(jnp.argmax(apply_fn(params, x), axis=-1) == labels)


def best_accuracy_at(frac, acc, grid):
    """Accuracy frontier: best accuracy among runs with at least a fraction f linear.

    ``out[..., g] = max {acc[..., k] : frac[..., k] >= grid[g]}`` (NaN when no
    run reaches ``grid[g]``): a monotone summary of a sweep over prior
    strengths, comparable between arms at a matched fraction of linear units.

    Args:
      frac: ``(..., K)`` fractions of linear units of K runs.
      acc: ``(..., K)`` their accuracies.
      grid: ``(G,)`` fractions f.

    Returns:
      ``(..., G)`` array.
    """
    frac, acc, grid = np.asarray(frac), np.asarray(acc), np.asarray(grid)
    if frac.shape != acc.shape:
        raise ValueError(f"frac and acc must have the same shape, got {frac.shape}, {acc.shape}")
    ok = frac[..., None, :] >= grid[:, None]
    best = np.where(ok, acc[..., None, :], -np.inf).max(axis=-1)
    return np.where(np.isfinite(best), best, np.nan)


def largest_fraction_within(frac, acc, reference, tol: float):
    """Per seed, the largest fraction of linear units among runs with ``acc >= reference - tol``.

    Args:
      frac, acc: ``(S, K)`` fraction linear and accuracy of K runs per seed.
      reference: ``(S,)`` reference accuracy (e.g. the dense network's).
      tol: allowed accuracy loss.

    Returns:
      ``(S,)`` fractions (0 when no run qualifies).
    """
    frac, acc = np.asarray(frac), np.asarray(acc)
    ok = acc >= np.asarray(reference)[:, None] - tol
    return np.where(ok, frac, 0.0).max(axis=1)
