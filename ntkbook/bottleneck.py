"""A wide network with a fixed-width layer inside: the bottleneck.

Liu, Zhu, Belkin 2020 (arXiv 2010.01092, Sec. 4) show that a wide network
does not become linear in its weights if one hidden layer keeps a fixed
width b while the others grow: writing the output as ``f = g(z_1, ..., z_b)``
with ``z_k`` the bottleneck pre-activations (each a wide network with a
linear read-out of the weights below), the Hessian contains
``sum_{k,l} d_k d_l g  grad z_k grad z_l^T``, whose norm is O(1) because g
depends on only b numbers, scaled by ``1/sqrt(b)``, not ``1/sqrt(m)``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .models import Model, activation_fn, check_sizes

__all__ = ["bottleneck_mlp"]


def bottleneck_mlp(in_dim: int, width: int, bottleneck: int, *,
                   activation: str = "tanh", bottleneck_activation: str | None = None) -> Model:
    """Wide network with one fixed-width non-linear layer in the middle.

    ``h1 = phi(W1 x / sqrt(d))`` (width m), ``s = psi(B h1 / sqrt(m))`` (width
    ``bottleneck`` = b, fixed), ``h2 = phi(W2 s / sqrt(b))`` (width m),
    ``f = v . h2 / sqrt(m)``: NTK parameterisation, all weights i.i.d. N(0, 1)
    (drawn as one Gaussian vector of all P weights, then reshaped: the same
    distribution as a draw per matrix, and one random-number kernel to
    compile instead of four). ``||H_f||`` does not shrink with m (see the
    module docstring): each bottleneck unit is ``psi`` of a wide
    linear-output network, and the upper part is a non-linear function of
    only b numbers. With ``bottleneck = width`` it is an ordinary
    three-hidden-layer network, which does become linear as m grows.

    Args:
      in_dim, width, bottleneck: d, m and b (positive ints).
      activation: phi, the wide layers' non-linearity.
      bottleneck_activation: psi; ``activation`` when None.

    Returns:
      ``Model`` with ``params = [{"W": (d, m)}, {"W": (m, b)}, {"W": (b, m)}, {"W": (m, 1)}]``.
    """
    check_sizes(in_dim=in_dim, width=width, bottleneck=bottleneck)
    phi = activation_fn(activation)
    psi = activation_fn(bottleneck_activation or activation)
    sizes = [in_dim, width, bottleneck, width, 1]
    shapes = list(zip(sizes[:-1], sizes[1:]))
    offsets = np.cumsum([0] + [a * b for a, b in shapes])

    def init_fn(key):
        flat = jax.random.normal(key, (int(offsets[-1]),))
        return [{"W": flat[lo:hi].reshape(shape)}
                for lo, hi, shape in zip(offsets[:-1], offsets[1:], shapes)]

    def dense(layer, h):
        return h @ layer["W"] / jnp.sqrt(h.shape[-1])

    def apply_fn(params, x):
        h = phi(dense(params[0], x))
        h = phi(dense(params[2], psi(dense(params[1], h))))
        return dense(params[3], h)

    config = dict(kind="bottleneck_mlp", in_dim=in_dim, width=width, bottleneck=bottleneck,
                  activation=activation, bottleneck_activation=bottleneck_activation)
    return Model(init_fn, apply_fn, config)
