"""Pruning non-linear units: PReLU gates, a sparsity prior, training sweeps, path length.

After Mehmeti-Göpel and Disselhoff 2023, "Nonlinear Advantage: Trained
Networks Might Not Be As Complex as You Think" (ICML, arXiv 2211.17180).

**Gated units.** Every hidden unit (channel) j applies a PReLU written as the
identity plus a gated ReLU,

    phi_s(z) = z + s * relu(-z) = max(z, 0) + (1 - s) * min(z, 0),

so the gate ``s = 1 - a`` (``a`` the PReLU negative slope) interpolates
between ReLU (s = 1) and the identity (s = 0). A unit with ``s == 0`` is
exactly linear and can be folded into its neighbours (``ntkbook.folding``).

**Sparsity prior.** The prior ``lam * sum_j |s_j|`` (an L1 penalty on the
distance of each slope from 1, i.e. on the *number* of non-linear units in
its convex relaxation) is applied by an exact proximal-gradient step on the
gates, ``s <- clip(s - eta * dCE/ds - eta * lam, 0, 1)`` (``prox_gate``), while
the weights take Adam steps. Unlike a subgradient, the proximal step sets
gates to exactly zero, so units become exactly linear; a gate that reaches 0
is kept there (the unit is pruned).

**Models** are ``(init_fn, apply_fn)`` pairs (``ntkbook.models.Model``) in
the *standard* parameterisation (He init ``W ~ N(0, 2 / fan_in)``, weights
used as they are in the forward pass), because we train them with Adam to
convergence rather than study their infinite-width limit. ``apply_fn``
returns the ``(n, C)`` class logits. Parameters are a dict with the gates
in their own entry ``params["s"]`` (a list with one ``(width,)`` vector per
gated layer), so the prior touches nothing else.

**Average path length** (``average_path_length``) is computed on a graph of
units: the expected number of non-linear units met along a random
input-to-output path, with paths drawn uniformly (unnormalised) or with equal
weight for every branch at a residual sum (normalised; the paper's Fig. 1).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .models import Model
from .folding import Folded, fold, folded_apply, num_params
from .pathlength import average_path_length, figure1_graph, mlp_graph, resmlp_graph

__all__ = ["gated_act", "soft_threshold", "prox_gate", "gated_mlp", "gated_resmlp", "init_batch",
           "linear_params", "train_gated", "accuracy", "fraction_linear",
           "nonlinear_per_layer", "Sweep", "prior_sweep", "best_accuracy_at",
           "largest_fraction_within", "select_run", "mlp_graph", "resmlp_graph", "figure1_graph",
           "average_path_length", "network_path_length", "Folded", "fold", "folded_apply",
           "num_params"]


# ----------------------------------------------------------------- units, prior
def gated_act(z, s):
    """Gated PReLU ``phi_s(z) = z + s * relu(-z)`` (s = 1: ReLU, s = 0: identity).

    Args:
      z: ``(..., width)`` pre-activations.
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


def _dense_init(key, n_in, n_out, gain, bias_std=0.0):
    w_key, b_key = jax.random.split(key)
    w = jax.random.normal(w_key, (n_in, n_out)) * jnp.sqrt(gain / n_in)
    return {"W": w, "b": bias_std * jax.random.normal(b_key, (n_out,))}


def _check_sizes(**sizes):
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


# ----------------------------------------------------------------------- models
def gated_mlp(in_dim: int, width: int, depth: int, num_classes: int, *,
              bias_std: float = 0.5) -> Model:
    """Fully connected network with a gated PReLU on every hidden unit.

    ``h_0 = x``, ``z_l = h_{l-1} W_l + b_l``, ``h_l = phi_{s_l}(z_l)`` for
    l = 1..L, logits ``h_L W_out + b_out``. Standard parameterisation, He init
    (``W_l ~ N(0, 2/fan_in)``, read-out ``N(0, 1/fan_in)``), hidden biases
    ``N(0, bias_std^2)`` (so the ReLU kinks do not all start through the
    origin), read-out bias 0, all gates ``s = 1`` (a plain ReLU network at
    initialisation).

    Args:
      in_dim: input dimension d.
      width: hidden width m.
      depth: number of hidden (gated) layers L.
      num_classes: number of outputs C.
      bias_std: std of the initial hidden biases.

    Returns:
      ``Model``; ``params = {"layers": [{"W", "b"}] * (L + 1), "s": [(m,)] * L}``
      and ``apply_fn(params, x: (n, d)) -> (n, C)``.
    """
    _check_sizes(in_dim=in_dim, width=width, depth=depth, num_classes=num_classes)
    sizes = [in_dim] + [width] * depth + [num_classes]

    def init_fn(key):
        keys = jax.random.split(key, depth + 1)
        layers = [_dense_init(k, a, b, *((2.0, bias_std) if i < depth else (1.0, 0.0)))
                  for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))]
        return {"layers": layers, "s": [jnp.ones((width,)) for _ in range(depth)]}

    def apply_fn(params, x):
        h = x
        for layer, s in zip(params["layers"][:-1], params["s"]):
            h = gated_act(h @ layer["W"] + layer["b"], s)
        return h @ params["layers"][-1]["W"] + params["layers"][-1]["b"]

    config = dict(kind="gated_mlp", in_dim=in_dim, width=width, depth=depth,
                  num_classes=num_classes, bias_std=bias_std)
    return Model(init_fn, apply_fn, config)


def gated_resmlp(in_dim: int, width: int, depth: int, num_classes: int, *,
                 bias_std: float = 0.5) -> Model:
    """Residual MLP with gated PReLUs inside each residual branch.

    ``h_0 = x A + a`` (linear embedding), then for l = 1..L
    ``h_l = h_{l-1} + phi_{s_l}(h_{l-1} W_l + b_l) V_l + c_l``, logits
    ``h_L W_out + b_out``. He init for W_l, ``V_l ~ N(0, 1/(m L))`` (so the
    residual stream grows by O(1) over the L blocks), embedding and read-out
    ``N(0, 1/fan_in)``, zero biases, gates ``s = 1``. Stream and branch width
    are both m.

    Returns:
      ``Model``; ``params = {"embed": {"W", "b"}, "blocks": [{"W", "b", "V",
      "c"}] * L, "out": {"W", "b"}, "s": [(m,)] * L}``; ``apply_fn -> (n, C)``.
    """
    _check_sizes(in_dim=in_dim, width=width, depth=depth, num_classes=num_classes)

    def init_fn(key):
        e_key, o_key, b_key = jax.random.split(key, 3)
        blocks = []
        for l in range(depth):
            w_key, v_key = jax.random.split(jax.random.fold_in(b_key, l))
            blk = _dense_init(w_key, width, width, 2.0, bias_std)
            blk["V"] = jax.random.normal(v_key, (width, width)) / jnp.sqrt(width * depth)
            blk["c"] = jnp.zeros((width,))
            blocks.append(blk)
        return {"embed": _dense_init(e_key, in_dim, width, 1.0), "blocks": blocks,
                "out": _dense_init(o_key, width, num_classes, 1.0),
                "s": [jnp.ones((width,)) for _ in range(depth)]}

    def apply_fn(params, x):
        h = x @ params["embed"]["W"] + params["embed"]["b"]
        for blk, s in zip(params["blocks"], params["s"]):
            h = h + gated_act(h @ blk["W"] + blk["b"], s) @ blk["V"] + blk["c"]
        return h @ params["out"]["W"] + params["out"]["b"]

    config = dict(kind="gated_resmlp", in_dim=in_dim, width=width, depth=depth,
                  num_classes=num_classes, bias_std=bias_std)
    return Model(init_fn, apply_fn, config)


def linear_params(params):
    """The same network with every unit linear: all gates set to 0."""
    return {**params, "s": [jnp.zeros_like(s) for s in params["s"]]}


def init_batch(model: Model, keys, *, dtype=None):
    """``vmap(model.init_fn)(keys)``: B initialisations, leaves cast to ``dtype``.

    Args:
      model: a ``Model``.
      keys: ``(B, 2)`` PRNG keys.
      dtype: e.g. ``jnp.float32`` to train in single precision (faster on CPU)
        while float64 is enabled for other checks; None keeps jax's default.
    """
    params = jax.vmap(model.init_fn)(keys)
    return params if dtype is None else jax.tree.map(lambda a: a.astype(dtype), params)


def nonlinear_per_layer(params):
    """``(..., L)`` number of non-linear units (gate != 0) in each gated layer."""
    return jnp.stack([jnp.sum(s != 0, axis=-1) for s in params["s"]], axis=-1)


def fraction_linear(params, *, threshold: float = 0.0):
    """Fraction of gated units with ``|s| <= threshold`` (default: exactly linear).

    Works on batched params: the leading axes of the gates are kept, e.g.
    ``(B,)`` for gates of shape ``(B, m)``.
    """
    s = jnp.concatenate([jnp.abs(g) <= threshold for g in params["s"]], axis=-1)
    return jnp.mean(s, axis=-1)


# --------------------------------------------------------------------- training
def _cross_entropy(apply_fn, params, x, labels):
    logits = apply_fn(params, x)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


_CHUNK = 250   # steps per compiled scan: one compilation serves every run length


def _optimizer(learning_rate):
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))


@partial(jax.jit, static_argnames=("apply_fn", "batch_size"))
def _train_chunk(apply_fn, carry, keys, lams, x, labels, learning_rate, gate_lr, prior_steps,
                 num_steps, start, batch_size):
    """Steps ``start .. start + _CHUNK - 1`` of B runs; steps ``>= num_steps`` leave the carry as is.

    Only the chunk length is static, so runs of any length (and any
    ``prior_steps``) share one compilation per model and batch size.
    """
    opt = _optimizer(learning_rate)
    grad_fn = jax.value_and_grad(partial(_cross_entropy, apply_fn))

    def one(carry, key, lam):
        def step(carry, t):
            p, state, mask = carry
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, x.shape[0])
            loss, g = grad_fn(p, x[idx], labels[idx])
            g_s = g["s"]
            g = {**g, "s": [jnp.zeros_like(s) for s in g_s]}
            updates, new_state = opt.update(g, state, p)
            new_p = optax.apply_updates(p, updates)
            threshold = gate_lr * lam * (t < prior_steps)
            gates = [prox_gate(s - gate_lr * gs, threshold) * m
                     for s, gs, m in zip(new_p["s"], g_s, mask)]
            # a gate the prior sets to 0 is pruned (masked); without the prior
            # (lam = 0 or after prior_steps) a gate clipped at 0 may come back
            pruned = [(s == 0) & (threshold > 0) for s in gates]
            new = ({**new_p, "s": gates}, new_state, [jnp.where(q, 0, m) for q, m in zip(pruned, mask)])
            active = t < num_steps
            return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, carry), loss

        return jax.lax.scan(step, carry, start + jnp.arange(_CHUNK))

    return jax.vmap(one)(carry, keys, lams)


def train_gated(apply_fn: Callable, params, x, labels, *, keys, lams, num_steps: int,
                learning_rate: float = 3e-3, gate_lr: float = 0.1, batch_size: int = 128,
                masks=None, prior_steps: int | None = None):
    """Adam on the weights, proximal gradient on the gates; B runs batched.

    Each step draws a minibatch (with replacement, key ``fold_in(key, t)``),
    takes an Adam step on the weights and the step
    ``s <- prox_gate(s - gate_lr * dCE/ds, gate_lr * lam) * mask`` on the
    gates: the objective is ``CE(params) + lam * sum_j |s_j|`` with
    ``0 <= s <= 1`` (Mehmeti-Göpel & Disselhoff 2023,
    arXiv 2211.17180, Sec. 3: a sparsity prior pulling PReLU slopes to 1).
    Units with ``mask == 0`` are held exactly linear (``s = 0``) throughout,
    and a unit whose gate the prior sets to 0 stays linear from then on (it
    is pruned); without the prior (``lam = 0``, or after ``prior_steps``) the
    gates only move within ``[0, 1]`` and nothing is pruned.
    The weights take Adam steps (gradients clipped to global norm 1), the
    gates plain gradient steps of size ``gate_lr`` followed by ``prox_gate``:
    an exact proximal-gradient step on the gates.
    The loop is a ``lax.scan`` over chunks of ``_CHUNK`` steps (one
    compilation for every run length), the B runs are ``vmap``-ed.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, C)`` logits.
      params: pytree with leading batch axis B on every leaf (including
        ``params["s"]``, a list of ``(B, m)`` gates).
      x: ``(n, d)`` training inputs (shared by the B runs).
      labels: ``(n,)`` integer classes.
      keys: ``(B, 2)`` PRNG keys for the minibatches.
      lams: ``(B,)`` prior strengths lam >= 0.
      num_steps: number of steps T.
      learning_rate: Adam step size.
      gate_lr: gradient step size eta of the gates.
      batch_size: minibatch size.
      masks: optional list of ``(B, m)`` 0/1 arrays (default all ones).
      prior_steps: the prior acts during the first ``prior_steps`` steps only
        (default all); afterwards the network trains on with its linear
        units held linear (a recovery phase).

    Returns:
      ``(params, losses)`` with ``losses (B, T)`` the minibatch losses.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    lams = jnp.asarray(lams, dtype=x.dtype)
    if lams.ndim != 1 or bool(jnp.any(lams < 0)):
        raise ValueError(f"lams must be a 1-d array of values >= 0, got {lams!r}")
    if masks is None:
        masks = [jnp.ones_like(s) for s in params["s"]]
    prior_steps = num_steps if prior_steps is None else prior_steps
    if not isinstance(prior_steps, int) or not 0 <= prior_steps <= num_steps:
        raise ValueError(f"prior_steps must be an int in [0, num_steps], got {prior_steps!r}")
    params = {**params, "s": [s * m for s, m in zip(params["s"], masks)]}
    carry = (params, jax.vmap(_optimizer(learning_rate).init)(params), masks)
    losses = []
    for start in range(0, num_steps, _CHUNK):   # a few dispatches, no per-step Python
        carry, loss = _train_chunk(apply_fn, carry, keys, lams, x, labels, learning_rate,
                                   gate_lr, prior_steps, num_steps, start, batch_size)
        losses.append(loss)
    return carry[0], jnp.concatenate(losses, axis=1)[:, :num_steps]


def accuracy(apply_fn: Callable, params, x, labels):
    """Classification accuracy; ``params`` may carry a leading batch axis (vmapped).

    Returns a scalar for unbatched params, else ``(B,)``.
    """
    def acc(p):
        return jnp.mean(jnp.argmax(apply_fn(p, x), axis=-1) == labels)

    if params["s"][0].ndim == 1:
        return acc(params)
    return jax.vmap(acc)(params)


class Sweep(NamedTuple):
    """Output of ``prior_sweep`` (S seeds, K prior strengths, L gated layers).

    Attributes:
      lams: ``(K,)`` prior strengths.
      dense, linear: params ``(S, ...)`` of the unregularised and the all-linear
        network; late, early: params ``(S * K, ...)`` (seed-major).
      acc_dense, acc_linear: ``(S,)`` test accuracies.
      acc_late, acc_early, frac_late, frac_early, apl_late, apl_early:
        ``(S, K)`` test accuracy, fraction of linear units, normalised APL.
      layers_late, layers_early: ``(S, K, L)`` non-linear units per layer.
      apl_dense: ``(S,)`` APL of the dense networks.
    """

    lams: np.ndarray
    dense: dict
    linear: dict
    late: dict
    early: dict | None
    acc_dense: np.ndarray
    acc_linear: np.ndarray
    acc_late: np.ndarray
    frac_late: np.ndarray
    apl_late: np.ndarray
    layers_late: np.ndarray
    acc_early: np.ndarray | None
    frac_early: np.ndarray | None
    apl_early: np.ndarray | None
    layers_early: np.ndarray | None
    apl_dense: np.ndarray


def prior_sweep(model: Model, x, labels, x_test, labels_test, *, key, num_seeds: int, lams,
                num_steps: int, ft_steps: int, recover_steps: int = 0, early: bool = True,
                dtype=jnp.float32, **train_kwargs) -> Sweep:
    """The chapter's protocol: dense, all-linear, prior late and prior early.

    * dense: ``num_steps`` steps, no prior (lam = 0);
    * linear: the same network with every gate held at 0, ``num_steps`` steps;
    * late: from each dense network, ``ft_steps`` steps with prior ``lam``;
    * early: from each initialisation, ``num_steps + ft_steps`` steps with the
      prior ``lam`` on from the first step (same total training time as late);
    * both arms end with ``recover_steps`` steps without the prior (linear
      units held linear), the usual prune-then-fine-tune recovery.

    Keys: ``fold_in(key, i)`` for i = 0 (inits), 1 (dense/linear batches),
    2 (late batches), 3 (early batches), then one key per run.

    Args:
      model: a ``gated_mlp`` or ``gated_resmlp``.
      x, labels: training data ``(n, d)``, ``(n,)``; cast to ``dtype``.
      x_test, labels_test: test data.
      key: PRNG key.
      num_seeds: S initialisations.
      lams: K prior strengths.
      num_steps, ft_steps: training and fine-tuning steps.
      recover_steps: final steps without the prior (< ft_steps).
      early: also run the early arm.
      dtype: training precision.
      **train_kwargs: passed to ``train_gated`` (learning_rate, gate_lr, batch_size).

    Returns:
      ``Sweep``.
    """
    from .notebook import point_keys

    lams = np.asarray(lams, dtype=float)
    S, K = int(num_seeds), lams.size
    if S < 1 or K < 1:
        raise ValueError(f"num_seeds and lams must be non-empty, got {num_seeds}, {lams}")
    x, x_test = jnp.asarray(x, dtype), jnp.asarray(x_test, dtype)
    run_keys = [jax.random.fold_in(key, i) for i in range(4)]
    init = init_batch(model, point_keys(run_keys[0], S), dtype=dtype)
    train = partial(train_gated, model.apply_fn, x=x, labels=labels, **train_kwargs)
    acc = partial(accuracy, model.apply_fn, x=x_test, labels=labels_test)
    # dense and all-linear runs in one batch of 2S (same minibatches, gates held at 0)
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), init, linear_params(init))
    masks = [jnp.concatenate([jnp.ones_like(g), jnp.zeros_like(g)]) for g in init["s"]]
    both, _ = train(both, keys=jnp.concatenate([point_keys(run_keys[1], S)] * 2),
                    lams=jnp.zeros(2 * S, dtype), num_steps=num_steps, masks=masks)
    dense = jax.tree.map(lambda a: a[:S], both)
    linear = jax.tree.map(lambda a: a[S:], both)
    rep = lambda tree: jax.tree.map(lambda a: jnp.repeat(a, K, axis=0), tree)
    lam_runs = jnp.asarray(np.tile(lams, S), dtype)

    def summarise(params):
        shape = (S, K)
        return (np.asarray(acc(params)).reshape(shape),
                np.asarray(fraction_linear(params)).reshape(shape),
                np.asarray(network_path_length(model, params)).reshape(shape),
                np.asarray(nonlinear_per_layer(params)).reshape(shape + (-1,)))

    late, _ = train(rep(dense), keys=point_keys(run_keys[2], S * K), lams=lam_runs,
                    num_steps=ft_steps, prior_steps=ft_steps - recover_steps)
    out_early = (None,) * 5
    if early:
        total = num_steps + ft_steps
        early_p, _ = train(rep(init), keys=point_keys(run_keys[3], S * K), lams=lam_runs,
                           num_steps=total, prior_steps=total - recover_steps)
        out_early = (early_p, *summarise(early_p))
    return Sweep(lams, dense, linear, late, out_early[0],
                 np.asarray(acc(dense)), np.asarray(acc(linear)), *summarise(late),
                 *out_early[1:], np.asarray(network_path_length(model, dense)))


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


def select_run(tree, index: int, dtype=None):
    """Run ``index`` of a batched pytree (leading axis), optionally cast to ``dtype``."""
    return jax.tree.map(lambda a: jnp.asarray(a[index], dtype), tree)


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


# --------------------------------------------------------- average path length
def network_path_length(model: Model, params, *, normalized: bool = True):
    """APL of a ``gated_mlp``/``gated_resmlp`` whose units with gate 0 are linear.

    Builds ``mlp_graph`` or ``resmlp_graph`` for ``model.config``, marks the
    units with ``s != 0`` as non-linear and calls ``average_path_length``.

    Args:
      model: the model.
      params: parameters, optionally with leading batch axes on the gates.

    Returns:
      A float, or an array of the gates' leading batch shape.
    """
    cfg = model.config
    if cfg.get("kind") == "gated_mlp":
        adj, hidden = mlp_graph(cfg["in_dim"], [cfg["width"]] * cfg["depth"], cfg["num_classes"])
    elif cfg.get("kind") == "gated_resmlp":
        adj, hidden = resmlp_graph(cfg["in_dim"], cfg["width"], cfg["depth"], cfg["num_classes"])
    else:
        raise ValueError(f"model must be a gated_mlp or gated_resmlp, got kind={cfg.get('kind')!r}")
    active = np.stack([np.asarray(s) != 0 for s in params["s"]], axis=-2)   # (..., L, m)
    batch = active.shape[:-2]
    out = np.empty(batch)
    for i in np.ndindex(batch):
        c = np.zeros(adj.shape[0])
        for l, idx in enumerate(hidden):
            c[idx] = active[i + (l,)]
        out[i] = average_path_length(adj, c, normalized=normalized)
    return float(out) if out.ndim == 0 else out
