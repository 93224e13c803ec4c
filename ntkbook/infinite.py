"""Infinite-width tangent kernels of this book's models, through neural-tangents.

As the width m -> infinity the tangent kernel of a network in the NTK
parameterisation converges to a deterministic kernel (Jacot, Gabriel,
Hongler 2018, arXiv 1806.07572, Thm. 1), which neural-tangents' ``stax``
computes in closed form. ``stax_mlp`` and ``stax_resnet`` are the ``stax``
twins of ``ntkbook.models.mlp`` and ``ntkbook.models.resnet`` (same
constants), and ``infinite_ntk_fn`` maps a ``Model.config`` to its limit
kernel. This is the only module that imports neural-tangents, and it does so
lazily, on first use.

neural-tangents' ``__init__`` imports its ``experimental`` subpackage, whose
TensorFlow port of the empirical kernel (through ``jax.experimental.jax2tf``)
imports TensorFlow and Keras: 10 of the 11 s that ``import neural_tangents``
costs on 2 cores. Nothing here uses it, so importing this module registers
``neural_tangents.experimental`` to load with ``importlib.util.LazyLoader``:
``nt.experimental`` still works, and TensorFlow is imported only when one of
its attributes is first read (see ``defer_experimental``).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

__all__ = ["defer_experimental", "infinite_ntk_fn", "stax_mlp", "stax_resnet"]

_EXPERIMENTAL = "neural_tangents.experimental"


class _LazyFinder(importlib.abc.MetaPathFinder):
    """Finds the module ``name`` once, with a ``LazyLoader``."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def defer_experimental(name: str = _EXPERIMENTAL) -> bool:
    """Make the next ``import neural_tangents`` load its ``experimental`` lazily.

    Installs a one-shot finder at the front of ``sys.meta_path`` (the
    ``LazyLoader`` pattern of the ``importlib`` docs, through a finder so
    that the import system never reads the lazy module while importing its
    parent). Returns True if installed; False if neural-tangents is already
    imported or a finder is already waiting. ``name`` is the submodule to
    defer (a parameter for the tests).
    """
    if name.rpartition(".")[0] in sys.modules or any(
            isinstance(f, _LazyFinder) and f.name == name for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _LazyFinder(name))
    return True


defer_experimental()


def _stax():
    """Import neural-tangents' stax quietly.

    XLA (and TensorFlow, if ``neural_tangents.experimental`` is loaded
    eagerly because neural-tangents was imported before this module) print
    C++ registration warnings on stderr at import time, before
    ``TF_CPP_MIN_LOG_LEVEL`` can act; the import runs with file descriptor 2
    pointed at /dev/null and then restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            from neural_tangents import stax
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return stax


_STAX_ACTIVATIONS = {"relu": "Relu", "erf": "Erf", "identity": "Identity"}


def stax_mlp(width: int, depth: int, *, activation="relu", w_std=1.0, b_std=0.0):
    """neural-tangents ``stax`` twin of ``ntkbook.models.mlp`` (same constants).

    Returns the ``(init_fn, apply_fn, kernel_fn)`` triple of ``stax.serial``.
    Only activations with closed-form kernels are supported: relu, erf,
    identity.
    """
    if activation not in _STAX_ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(_STAX_ACTIVATIONS)} for the "
            f"analytic kernel, got {activation!r}"
        )
    stax = _stax()
    b = None if b_std == 0.0 else b_std
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b, parameterization="ntk"),
                   getattr(stax, _STAX_ACTIVATIONS[activation])()]
    layers.append(stax.Dense(1, W_std=w_std, b_std=b, parameterization="ntk"))
    return stax.serial(*layers)


def stax_resnet(width: int, depth: int, *, alpha: float, train_ends: bool = True):
    """neural-tangents ``stax`` twin of ``ntkbook.models.resnet``.

    ``h_0 = A x / sqrt(d)``; each block adds
    ``alpha * V relu(sqrt(2) W h / sqrt(m)) / sqrt(m)`` to the identity;
    read-out ``v . h_L / sqrt(m)`` (Huang et al. 2020, arXiv 2002.06262;
    Belfer et al. 2021, arXiv 2104.03093).

    ``train_ends=True``: the ``stax.serial`` triple; its NTK counts the
    gradients of A and v too. ``train_ends=False`` (the papers' setting, A and v
    fixed): stax has no frozen layers, so ``kernel_fn`` is built from two
    variants whose input layer is in standard parameterisation with
    ``s = (s0, 1)``, which contributes ``<x, x'> / s0`` to the NTK and leaves
    the NNGP unchanged; the NTK is affine in that contribution, so
    ``2 NTK(s0=2) - NTK(s0=1)`` removes A exactly, and subtracting the NNGP
    removes v (the read-out has ``W_std = 1``). ``init_fn``/``apply_fn`` are the
    network's (the same for both settings).

    Returns:
      ``(init_fn, apply_fn, kernel_fn)``; with ``train_ends=False``,
      ``kernel_fn(x1, x2=None, get=None)`` accepts ``get`` in ``"nngp"``,
      ``"ntk"``, a tuple of them, or None (returns ``(nngp, ntk)``).
    """
    stax = _stax()
    block = stax.serial(
        stax.FanOut(2),
        stax.parallel(
            stax.Identity(),
            stax.serial(
                stax.Dense(width, W_std=2.0 ** 0.5, parameterization="ntk"),
                stax.Relu(),
                stax.Dense(width, W_std=alpha, parameterization="ntk"),
            ),
        ),
        stax.FanInSum(),
    )
    readout = stax.Dense(1, W_std=1.0, parameterization="ntk")
    net = stax.serial(stax.Dense(width, W_std=1.0, parameterization="ntk"),
                      *([block] * depth), readout)
    if train_ends:
        return net
    variants = [stax.serial(stax.Dense(width, W_std=1.0, parameterization="standard", s=(s0, 1)),
                            *([block] * depth), readout)[2] for s0 in (1, 2)]

    def kernel_fn(x1, x2=None, get=None):
        k1, k2 = (fn(x1, x2, ("nngp", "ntk")) for fn in variants)
        out = {"nngp": k2.nngp, "ntk": 2 * k2.ntk - k1.ntk - k2.nngp}
        if get is None:
            return out["nngp"], out["ntk"]
        if isinstance(get, str):
            return out[get]
        return tuple(out[g] for g in get)

    return net[0], net[1], kernel_fn


def infinite_ntk_fn(config: dict):
    """Analytic infinite-width NTK of a model built by ``ntkbook.models``.

    Args:
      config: the ``Model.config`` dict of an ``mlp`` (relu/erf/identity
        hidden activation, no output activation) or a ``resnet``.

    Returns:
      ``kernel(x1: (n1, d), x2: (n2, d) | None) -> (n1, n2)`` NTK matrix
      (neural-tangents ``kernel_fn(x1, x2, "ntk")``, float64 if enabled).
    """
    if config["kind"] == "mlp":
        if config.get("output_activation"):
            raise ValueError("output_activation has no analytic NTK here; got "
                             f"{config['output_activation']!r}")
        _, _, kernel_fn = stax_mlp(config["width"], config["depth"],
                                   activation=config["activation"],
                                   w_std=config["w_std"], b_std=config["b_std"])
    elif config["kind"] == "resnet":
        _, _, kernel_fn = stax_resnet(config["width"], config["depth"],
                                      alpha=config["alpha"],
                                      train_ends=config.get("train_ends", True))
    else:
        raise ValueError(f"config['kind'] must be 'mlp' or 'resnet', got {config['kind']!r}")

    def kernel(x1, x2=None):
        return kernel_fn(x1, x2, "ntk")

    return kernel
