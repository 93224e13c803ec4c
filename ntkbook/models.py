"""Networks as pure ``(init_fn, apply_fn)`` pairs over pytrees.

The protocol, written once (after ``jax.example_libraries.stax``):

* ``init_fn(key) -> params``: a pytree of arrays; ``key`` is a PRNG key.
* ``apply_fn(params, x) -> (n, 1)`` for inputs ``x: (n, d)``.

Every model here is in the **NTK parameterisation** (Jacot et al. 2018,
arXiv 1806.07572, eq. 1): all trainable weights are drawn i.i.d. N(0, 1) and
the forward pass scales each matrix product by ``w_std / sqrt(fan_in)`` and
each bias by ``b_std``. With this scaling the tangent kernel has a finite,
deterministic limit as the width m -> infinity, and
``ntkbook.infinite.infinite_ntk_fn`` gives that limit through neural-tangents'
``stax`` with exactly the same constants.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Model", "ACTIVATIONS", "activation_fn", "check_sizes", "mlp", "resnet", "antisymmetric"]

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "erf": jax.scipy.special.erf,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda z: z,
}


class Model(NamedTuple):
    """An ``(init_fn, apply_fn)`` pair plus the settings that built it."""

    init_fn: Callable
    apply_fn: Callable
    config: dict


def activation_fn(name: str) -> Callable:
    """Return the activation called ``name`` (a key of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        )
    return ACTIVATIONS[name]


def check_sizes(**sizes) -> None:
    """``ValueError("NAME must be a positive int, got ...")`` unless every size is an int >= 1."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def mlp(
    in_dim: int,
    width: int,
    depth: int,
    *,
    activation: str = "relu",
    output_activation: str | None = None,
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> Model:
    """Fully connected network in NTK parameterisation.

    ``h_0 = x``, ``h_l = phi(w_std * W_l h_{l-1} / sqrt(n_{l-1}) + b_std * b_l)``
    for ``l = 1..depth`` (width ``m = width``), then the linear read-out
    ``f_lin = w_std * W_out h_depth / sqrt(m) + b_std * b_out`` and
    ``f = psi(f_lin)`` where ``psi`` is ``output_activation`` (identity when
    None). ``W_l ~ N(0, 1)`` entrywise; biases ``b_l ~ N(0, 1)`` (omitted from
    ``params`` when ``b_std == 0``).

    Args:
      in_dim: input dimension d.
      width: hidden width m.
      depth: number of hidden layers L (>= 1).
      activation: hidden non-linearity phi, a key of ``ACTIVATIONS``.
      output_activation: optional non-linearity psi on the output
        (Liu, Zhu, Belkin 2020, arXiv 2010.01092, Sec. 4).
      w_std, b_std: weight and bias scales.

    Returns:
      ``Model`` with ``params = [{"W": (n_{l-1}, n_l), "b": (n_l,)}, ...]``
      (depth + 1 layers) and ``apply_fn(params, x: (n, d)) -> (n, 1)``.
    """
    check_sizes(in_dim=in_dim, width=width, depth=depth)
    phi = activation_fn(activation)
    psi = activation_fn(output_activation or "identity")
    sizes = [in_dim] + [width] * depth + [1]
    use_bias = b_std != 0.0

    def init_fn(key):
        keys = jax.random.split(key, len(sizes) - 1)
        params = []
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]):
            w_key, b_key = jax.random.split(k)
            layer = {"W": jax.random.normal(w_key, (n_in, n_out))}
            if use_bias:
                layer["b"] = jax.random.normal(b_key, (n_out,))
            params.append(layer)
        return params

    def dense(layer, h):
        out = w_std * h @ layer["W"] / jnp.sqrt(h.shape[-1])
        return out + b_std * layer["b"] if use_bias else out

    def apply_fn(params, x):
        h = x
        for layer in params[:-1]:
            h = phi(dense(layer, h))
        return psi(dense(params[-1], h))

    config = dict(kind="mlp", in_dim=in_dim, width=width, depth=depth,
                  activation=activation, output_activation=output_activation,
                  w_std=w_std, b_std=b_std)
    return Model(init_fn, apply_fn, config)


def resnet(in_dim: int, width: int, depth: int, *, alpha: float,
           train_ends: bool = True) -> Model:
    """Residual network of Huang et al. 2020 as analysed by Belfer et al. 2021.

    ``h_0 = A x / sqrt(d)``,
    ``h_l = h_{l-1} + alpha * V_l relu(sqrt(2) W_l h_{l-1} / sqrt(m)) / sqrt(m)``
    for ``l = 1..L``, ``f = v . h_L / sqrt(m)``, with all of A (d, m),
    W_l (m, m), V_l (m, m), v (m,) i.i.d. N(0, 1), ReLU, no biases, and
    ``alpha`` the skip/residual balance (Huang, Wang, Tao, Zhao 2020,
    arXiv 2002.06262; Belfer, Geifman, Galun, Basri 2021, arXiv 2104.03093,
    with ``alpha = L^-gamma``).

    The papers write the same network in the variables ``x_l = h_l / sqrt(m)``
    (``x_l = x_{l-1} + alpha sqrt(1/m) V_l relu(sqrt(2/m) W_l x_{l-1})``,
    ``f = v^T x_L``) for inputs on the unit sphere. The input layer here is
    fan-in normalised like every layer of the package, so the input covariance
    is ``<x, x'> / d``; the ReLU ResNTK is positively homogeneous of degree one
    in it, so a different input scale only multiplies the kernel by a constant
    (``ntkbook.resntk.resntk(..., train_ends=False, input_variance=1/d)`` is this model's limit).

    Args:
      in_dim: input dimension d.
      width: width m of every residual block.
      depth: number of residual blocks L (>= 1).
      alpha: scale of the residual branch.
      train_ends: False is the papers' setting: A and v stay at their
        initial values (``apply_fn`` wraps them in ``jax.lax.stop_gradient``,
        so every jax derivative, hence ``ntkbook.ntk.empirical_ntk``, sees only
        the blocks). True (default) trains them too, as neural-tangents'
        ``ntkbook.infinite.stax_resnet`` does by default.

    Returns:
      ``Model``; ``params = {"A": (d, m), "v": (m,), "blocks": [{"W", "V"}]}``.
    """
    check_sizes(in_dim=in_dim, width=width, depth=depth)
    if not isinstance(train_ends, bool):
        raise ValueError(f"train_ends must be True or False, got {train_ends!r}")
    freeze = (lambda a: a) if train_ends else jax.lax.stop_gradient

    def init_fn(key):
        a_key, v_key, b_key = jax.random.split(key, 3)
        blocks = [
            {"W": jax.random.normal(jax.random.fold_in(b_key, 2 * l), (width, width)),
             "V": jax.random.normal(jax.random.fold_in(b_key, 2 * l + 1), (width, width))}
            for l in range(depth)
        ]
        return {"A": jax.random.normal(a_key, (in_dim, width)),
                "v": jax.random.normal(v_key, (width,)),
                "blocks": blocks}

    def apply_fn(params, x):
        h = x @ freeze(params["A"]) / jnp.sqrt(in_dim)
        for block in params["blocks"]:
            inner = jax.nn.relu(jnp.sqrt(2.0) * h @ block["W"] / jnp.sqrt(width))
            h = h + alpha * inner @ block["V"] / jnp.sqrt(width)
        return (h @ freeze(params["v"]) / jnp.sqrt(width))[:, None]

    config = dict(kind="resnet", in_dim=in_dim, width=width, depth=depth, alpha=alpha,
                  train_ends=train_ends)
    return Model(init_fn, apply_fn, config)


def antisymmetric(model) -> Model:
    """The antisymmetric pair ``f~(w+, w-; x) = (f(w+; x) - f(w-; x)) / sqrt(2)``.

    Initialised at ``w+ = w- = w0`` (``init_fn`` draws w0 once), so
    ``f~(w0) = 0`` for every input and every width while the tangent kernel is
    unchanged at initialisation: ``K~ = (K(w+) + K(w-)) / 2 = K(w0)``. For a
    one-hidden-layer MLP this *is* the "doubling" initialisation
    ``W = [W0, W0]``, ``v = [v0; -v0]`` of a width-2m network, a standard way to start
    from a zero function (e.g. Chizat, Oyallon, Bach 2019, arXiv 1812.07956):
    the trained network only has to fit the targets, not undo a random
    initial function.

    Args:
      model: a ``Model``.

    Returns:
      ``Model`` with ``params = {"plus": w+, "minus": w-}``.
    """
    init_base, apply_base = model.init_fn, model.apply_fn

    def init_fn(key):
        params = init_base(key)
        return {"plus": params, "minus": params}

    def apply_fn(params, x):
        return (apply_base(params["plus"], x) - apply_base(params["minus"], x)) / jnp.sqrt(2.0)

    config = dict(model.config, antisymmetric=True)
    return Model(init_fn, apply_fn, config)
