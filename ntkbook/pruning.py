"""Gated MLPs: fully connected and residual networks with a gated PReLU per unit.

After Mehmeti-Göpel and Disselhoff 2023, "Nonlinear Advantage: Trained
Networks Might Not Be As Complex as You Think" (ICML, arXiv 2211.17180).
Every hidden unit j applies ``phi_{s_j}(z) = z + s_j * relu(-z)``
(``ntkbook.gates.gated_act``): s = 1 is a ReLU, s = 0 the identity. The gates
live in ``params["s"]`` (one ``(width,)`` vector per gated layer) and are
trained with the proximal sparsity prior of ``ntkbook.gates``; a unit with
gate 0 can be folded into its neighbours (``ntkbook.folding``), and
``ntkbook.pathlength.network_path_length`` gives the average path length.
The 1-D convolutional versions (a gate per channel) are in ``ntkbook.convnets``.

Models are ``(init_fn, apply_fn)`` pairs (``ntkbook.models.Model``) in the
*standard* parameterisation (He init ``W ~ N(0, 2 / fan_in)``, weights used
as they are in the forward pass), because we train them with Adam to
convergence rather than study their infinite-width limit. ``apply_fn``
returns the ``(n, C)`` class logits.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .gates import gated_act
from .models import Model, check_sizes

__all__ = ["gated_mlp", "gated_resmlp"]


def _dense_init(key, n_in, n_out, gain, bias_std=0.0):
    w_key, b_key = jax.random.split(key)
    w = jax.random.normal(w_key, (n_in, n_out)) * jnp.sqrt(gain / n_in)
    return {"W": w, "b": bias_std * jax.random.normal(b_key, (n_out,))}


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
    check_sizes(in_dim=in_dim, width=width, depth=depth, num_classes=num_classes)
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
    check_sizes(in_dim=in_dim, width=width, depth=depth, num_classes=num_classes)

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
