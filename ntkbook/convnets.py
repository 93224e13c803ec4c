"""1-D convolutional networks with a gated PReLU per channel (chapter 5, MNIST-1D).

Mehmeti-Göpel and Disselhoff 2023 (arXiv 2211.17180) linearise *channels*
of CNNs and ResNets: every channel c of a convolutional layer has its own
gate ``s_c`` and applies ``phi_{s_c}(z) = z + s_c * relu(-z)`` at every
position (``ntkbook.gates.gated_act``). Both models follow the protocol of
``ntkbook.models``: ``init_fn(key) -> params``, ``apply_fn(params, x) -> (n, C)``
for inputs ``x: (n, length)`` (one input channel), with the gates in
``params["s"]`` (one ``(channels,)`` vector per gated layer).

Standard parameterisation with He initialisation (``W ~ N(0, 2/fan_in)``,
``fan_in = kernel_size * in_channels``), zero biases, all gates 1 (a plain
ReLU network at initialisation): the networks are trained with Adam, not
studied in their infinite-width limit.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .gates import gated_act
from .models import Model, check_sizes

__all__ = ["conv1d", "conv_length", "gated_cnn", "gated_rescnn"]


def conv_length(length: int, kernel_size: int, stride: int) -> int:
    """Output length of ``conv1d``: ``(length + 2 * (kernel_size // 2) - kernel_size) // stride + 1``."""
    return (length + 2 * (kernel_size // 2) - kernel_size) // stride + 1


def conv1d(h, w, b, *, stride: int = 1):
    """1-D convolution (cross-correlation) with zero padding ``k // 2`` on both sides.

    ``out[n, l, d] = sum_{j < k, c} hp[n, stride * l + j, c] * w[j, c, d] + b[d]``
    with ``hp`` the padded input. Written as k strided slices and one matrix
    product (no gather): under ``jax.vmap`` over weights it stays a batched
    matrix product.

    Args:
      h: ``(n, length, in_channels)``.
      w: ``(k, in_channels, out_channels)``.
      b: ``(out_channels,)``.
      stride: step between output positions.

    Returns:
      ``(n, conv_length(length, k, stride), out_channels)``.
    """
    k = w.shape[0]
    out_len = conv_length(h.shape[1], k, stride)
    hp = jnp.pad(h, ((0, 0), (k // 2, k // 2), (0, 0)))
    patches = jnp.stack([hp[:, j: j + stride * (out_len - 1) + 1: stride] for j in range(k)],
                        axis=2)                                   # (n, out_len, k, in)
    return jnp.einsum("nlkc,kcd->nld", patches, w) + b


def _conv_init(key, k, c_in, c_out, gain):
    return {"W": jax.random.normal(key, (k, c_in, c_out)) * jnp.sqrt(gain / (k * c_in)),
            "b": jnp.zeros((c_out,))}


def _dense_init(key, n_in, n_out):
    return {"W": jax.random.normal(key, (n_in, n_out)) / jnp.sqrt(n_in), "b": jnp.zeros((n_out,))}


def gated_cnn(length: int, channels: int, depth: int, num_classes: int, *,
              kernel_size: int = 3) -> Model:
    """Plain 1-D CNN: ``depth`` strided gated conv layers, then a linear read-out.

    ``h_0 = x[..., None]``; ``h_l = phi_{s_l}(conv1d(h_{l-1}, W_l, b_l, stride=2))``
    (layer 1 with kernel ``kernel_size + 2``, later ones ``kernel_size``), each
    halving the length; logits ``flatten(h_L) W_out + b_out`` (the MNIST-1D
    baseline CNN of Greydanus & Kobak 2024, with a gate per channel).

    Returns:
      ``Model``; ``params = {"convs": [{"W", "b"}] * depth, "out": {"W", "b"},
      "s": [(channels,)] * depth}``, ``apply_fn(params, x: (n, length)) -> (n, C)``.
    """
    check_sizes(length=length, channels=channels, depth=depth, num_classes=num_classes,
                kernel_size=kernel_size)
    kernels = [kernel_size + 2] + [kernel_size] * (depth - 1)
    out_len = length
    for k in kernels:
        out_len = conv_length(out_len, k, 2)

    def init_fn(key):
        keys = jax.random.split(key, depth + 1)
        convs = [_conv_init(keys[l], k, 1 if l == 0 else channels, channels, 2.0)
                 for l, k in enumerate(kernels)]
        return {"convs": convs, "out": _dense_init(keys[-1], out_len * channels, num_classes),
                "s": [jnp.ones((channels,)) for _ in range(depth)]}

    def apply_fn(params, x):
        h = x[..., None]
        for conv, s in zip(params["convs"], params["s"]):
            h = gated_act(conv1d(h, conv["W"], conv["b"], stride=2), s)
        return h.reshape(h.shape[0], -1) @ params["out"]["W"] + params["out"]["b"]

    config = dict(kind="gated_cnn", length=length, channels=channels, depth=depth,
                  num_classes=num_classes, kernel_size=kernel_size)
    return Model(init_fn, apply_fn, config)


def gated_rescnn(length: int, channels: int, depth: int, num_classes: int, *,
                 kernel_size: int = 3, stem_stride: int = 4) -> Model:
    """1-D residual CNN with a gated PReLU per channel inside each residual branch.

    Stem ``h_0 = conv1d(x, A, a, stride=stem_stride)`` (linear, kernel
    ``kernel_size + 2``), then for l = 1..depth
    ``h_l = h_{l-1} + conv1d(phi_{s_l}(conv1d(h_{l-1}, W_l, b_l)), V_l, c_l)``
    (stride 1, kernel ``kernel_size``), logits ``flatten(h_L) W_out + b_out``.
    He init for W_l, ``V_l`` scaled by ``1/sqrt(depth)`` more (the stream grows
    by O(1) over the blocks). As in the paper's ResNets the skips carry a linear
    path around every gated channel: the average path length then measures
    how many non-linear stages a typical path really meets.

    Returns:
      ``Model``; ``params = {"stem": {"W", "b"}, "blocks": [{"W", "b", "V", "c"}] * depth,
      "out": {"W", "b"}, "s": [(channels,)] * depth}``; ``apply_fn -> (n, C)``.
    """
    check_sizes(length=length, channels=channels, depth=depth, num_classes=num_classes,
                kernel_size=kernel_size, stem_stride=stem_stride)
    stem_k = kernel_size + 2
    out_len = conv_length(length, stem_k, stem_stride)

    def init_fn(key):
        stem_key, out_key, block_key = jax.random.split(key, 3)
        blocks = []
        for l in range(depth):
            w_key, v_key = jax.random.split(jax.random.fold_in(block_key, l))
            w = _conv_init(w_key, kernel_size, channels, channels, 2.0)
            v = _conv_init(v_key, kernel_size, channels, channels, 1.0 / depth)
            blocks.append({"W": w["W"], "b": w["b"], "V": v["W"], "c": v["b"]})
        return {"stem": _conv_init(stem_key, stem_k, 1, channels, 1.0), "blocks": blocks,
                "out": _dense_init(out_key, out_len * channels, num_classes),
                "s": [jnp.ones((channels,)) for _ in range(depth)]}

    def apply_fn(params, x):
        h = conv1d(x[..., None], params["stem"]["W"], params["stem"]["b"], stride=stem_stride)
        for blk, s in zip(params["blocks"], params["s"]):
            h = h + conv1d(gated_act(conv1d(h, blk["W"], blk["b"]), s), blk["V"], blk["c"])
        return h.reshape(h.shape[0], -1) @ params["out"]["W"] + params["out"]["b"]

    config = dict(kind="gated_rescnn", length=length, channels=channels, depth=depth,
                  num_classes=num_classes, kernel_size=kernel_size, stem_stride=stem_stride)
    return Model(init_fn, apply_fn, config)
