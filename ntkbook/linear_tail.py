"""Bias-free ReLU networks with a linear tail, and data that need a stable neuron (chapter 6).

The network of Le & Jegelka 2022 ("Training invariances and the low-rank
phenomenon: beyond linear networks", ICLR 2022, arXiv 2201.11968 v2), in the
standard parameterisation (no 1/sqrt(fan_in) in the forward pass; the
initial scale is in the weights)::

    h_0 = x,  h_l = relu(W_l h_{l-1})                 l = 1..num_relu
              h_l = h_{l-1} + relu(W_l h_{l-1})       l >= 2 with ``skip=True``
    f(x) = W_K ... W_{num_relu+1} h_{num_relu}         (the *linear tail*)

``params = [W_1, ..., W_K]`` with ``W_l: (m_l, m_{l-1})`` and ``m_K = 1``;
``num_relu = 0`` is a deep linear network. Without skip connections f is
positively homogeneous of degree K in the parameters,
``f(c theta; x) = c^K f(theta; x)`` for c > 0, the setting of the
directional-convergence theorems (Lyu & Li 2020, arXiv 1906.05890; Ji &
Telgarsky 2020, arXiv 2006.06657).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .models import Model

__all__ = ["network", "init_params", "relu_preactivations", "apply", "ball_data"]


def _check_arch(widths, num_relu, skip):
    if len(widths) < 3 or min(widths) < 1 or widths[-1] != 1:
        raise ValueError(f"widths must be [d, m_1, ..., 1] with >= 2 matrices, got {widths}")
    if not isinstance(num_relu, int) or isinstance(num_relu, bool) or not 0 <= num_relu < len(widths) - 1:
        raise ValueError(f"num_relu must be an int in [0, {len(widths) - 2}], got {num_relu!r}")
    if skip and any(widths[l] != widths[l + 1] for l in range(1, num_relu)):
        raise ValueError("skip=True needs square ReLU matrices W_2..W_num_relu (equal widths)")


def init_params(widths, *, key, scale: float = 1.0):
    """Gaussian matrices ``W_l ~ N(0, scale^2 / m_{l-1})``, ``W_l: (m_l, m_{l-1})``.

    Args:
      widths: ``[d, m_1, ..., m_{K-1}, 1]`` (input dimension first, 1 last).
      key: PRNG key, split once per matrix.
      scale: standard deviation times ``sqrt(fan_in)``.

    Returns:
      list of K matrices.
    """
    widths = [int(w) for w in widths]
    if len(widths) < 3 or min(widths) < 1 or widths[-1] != 1:
        raise ValueError(f"widths must be [d, m_1, ..., 1] with >= 2 matrices, got {widths}")
    keys = jax.random.split(key, len(widths) - 1)
    return [scale * jax.random.normal(k, (m, n)) / np.sqrt(n)
            for k, m, n in zip(keys, widths[1:], widths[:-1])]


def relu_preactivations(params, x, *, num_relu: int, skip: bool = False):
    """Pre-activations ``a_l = h_{l-1} W_l^T`` of the ReLU layers.

    Args:
      params: list of K matrices; x: ``(n, d)`` inputs.

    Returns:
      ``(a_list, h)``: list of ``num_relu`` arrays ``(n, m_l)`` and the last
      ReLU-part output ``h_{num_relu}: (n, m_{num_relu})``.
    """
    h, pre = x, []
    for l in range(num_relu):
        a = h @ params[l].T
        pre.append(a)
        h = h + jax.nn.relu(a) if (skip and l > 0) else jax.nn.relu(a)
    return pre, h


def apply(params, x, *, num_relu: int, skip: bool = False):
    """Network output ``f(x): (n, 1)`` for ``x: (n, d)`` (module docstring)."""
    _, h = relu_preactivations(params, x, num_relu=num_relu, skip=skip)
    for w in params[num_relu:]:
        h = h @ w.T
    return h


def network(widths, *, num_relu: int, skip: bool = False, scale: float = 1.0) -> Model:
    """The network of the module docstring as a ``Model(init_fn, apply_fn, config)``.

    Args:
      widths: ``[d, m_1, ..., m_{K-1}, 1]``.
      num_relu: number of ReLU layers (0: deep linear network).
      skip: identity skip connections around ReLU layers 2..num_relu.
      scale: initial scale (``init_params``).

    Returns:
      ``Model`` with ``init_fn(key) -> [W_1, ..., W_K]`` and
      ``apply_fn(params, x: (n, d)) -> (n, 1)``; ``config`` holds the arguments
      and ``degree`` (K, the degree of homogeneity when ``skip`` is False).
    """
    widths = [int(w) for w in widths]
    _check_arch(widths, num_relu, skip)

    def init_fn(key):
        return init_params(widths, key=key, scale=scale)

    def apply_fn(params, x):
        return apply(params, x, num_relu=num_relu, skip=skip)

    config = dict(widths=widths, num_relu=num_relu, skip=skip, scale=scale,
                  degree=len(widths) - 1)
    return Model(init_fn, apply_fn, config)


def ball_data(num_points: int, dim: int, *, key, radius: float = 1.0,
              margin: float = 0.1, bias: float = 1.0):
    """Disc-versus-ring data with a constant input coordinate (for stable neurons).

    ``z ~ N(0, I_d)``, label ``y = +1`` if ``||z||/sqrt(d) < radius`` else -1,
    keeping only points with ``| ||z||/sqrt(d) - radius | >= margin``; the
    input is ``x = (z, bias)``. Not linearly separable, but separable by a
    one-hidden-layer ReLU network. The constant coordinate lets a bias-free
    network have neurons active on every example (``w = (0, ..., 0, 1)``)
    and the positive inner class needs such a constant offset.

    Returns:
      ``(x (n, d+1), y (n,))``.
    """
    if num_points < 1 or dim < 1:
        raise ValueError(f"num_points and dim must be >= 1, got {num_points}, {dim}")
    z = jax.random.normal(key, (16 * num_points + 64, dim))
    r = np.linalg.norm(np.asarray(z), axis=1) / np.sqrt(dim)
    keep = np.flatnonzero(np.abs(r - radius) >= margin)
    if keep.size < num_points:
        raise ValueError(f"margin={margin} too large for radius={radius}, dim={dim}")
    keep = keep[:num_points]
    x = jnp.concatenate([z[keep], jnp.full((num_points, 1), float(bias))], axis=1)
    return x, jnp.asarray(np.where(r[keep] < radius, 1.0, -1.0))
