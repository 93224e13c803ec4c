"""ResNTK: the infinite-width tangent kernel of the residual network ``ntkbook.models.resnet``.

Network (Huang, Wang, Tao, Zhao 2020, arXiv 2002.06262; the model of Belfer,
Geifman, Galun, Basri 2021, arXiv 2104.03093), width m -> inf, L blocks:

    h_0 = A x,   h_l = h_{l-1} + alpha V_l relu(sqrt(2) W_l h_{l-1} / sqrt(m)) / sqrt(m),
    f = v . h_L / sqrt(m),

every entry of A, W_l, V_l, v drawn N(0, 1). ``train_ends`` says whether the
input layer A and the read-out v are trained too (True, the default here as in
``ntkbook.models.resnet`` and ``ntkbook.infinite.stax_resnet``) or stay at their
initial values (False: the setting of Huang et al. and Belfer et al.).
Kernels are zonal, ``K(x, y) = kappa(<x, y>)`` for unit x, y, and are
evaluated as vectorised numpy functions of an array ``t`` of cosines; the
arc-cosine building blocks and the input covariance ``q t`` are those of
``ntkbook.kernels``.
"""
from __future__ import annotations

import math

import numpy as np

from .kernels import _check_depth, _check_positive, _cosines, kappa_0, kappa_1

__all__ = ["resnet_cosines", "resntk", "resntk_spikiness"]


def resnet_cosines(t, depth: int, alpha: float) -> np.ndarray:
    """Correlations ``rho_0..rho_L`` of the residual stream.

    ``rho_0 = t``, ``rho_l = (rho_{l-1} + alpha^2 kappa_1(rho_{l-1})) / (1 + alpha^2)``
    (the stream's covariance is ``Sigma_l = S_l rho_l`` with
    ``S_l = q (1 + alpha^2)^l``; Huang et al. 2020, arXiv 2002.06262).

    Args:
      t: cosines in [-1, 1], any shape S.
      depth: number of residual blocks L >= 1.
      alpha: residual-branch scale (> 0).

    Returns:
      ``(L + 1, *S)`` array.
    """
    t = _cosines(t)
    depth = _check_depth(depth)
    _check_positive("alpha", alpha)
    rho = [t]
    for _ in range(depth):
        rho.append(np.clip((rho[-1] + alpha ** 2 * kappa_1(rho[-1])) / (1 + alpha ** 2), -1, 1))
    return np.stack(rho)


def _check_train_ends(train_ends):
    if not isinstance(train_ends, bool):
        raise ValueError(f"train_ends must be True or False, got {train_ends!r}")


def _block_step(theta, rho, scale, a2):
    """One block of the NTK recursion (the bracket of ``resntk``)."""
    return theta + a2 * ((theta + scale * rho) * kappa_0(rho) + scale * kappa_1(rho))


def resntk(t, depth: int, alpha: float, *, train_ends: bool = True,
           input_variance: float = 1.0):
    """ResNTK, the NTK of ``ntkbook.models.resnet`` (module docstring).

    With ``S_l = q (1 + alpha^2)^l`` (the stream's variance) and
    ``Sigma_l = S_l rho_l`` (``resnet_cosines``):

        Theta_0 = Sigma_0 if train_ends else 0,
        Theta_l = Theta_{l-1}
                  + alpha^2 [(Theta_{l-1} + Sigma_{l-1}) kappa_0(rho_{l-1})
                             + S_{l-1} kappa_1(rho_{l-1})],
        NTK = Theta_L + (Sigma_L if train_ends else 0).

    The bracket is the W_l and V_l gradient plus the earlier NTK passed
    through block l. Unrolled with A and v fixed it is a sum over blocks of
    ``alpha^2 S_{l-1} (rho_{l-1} kappa_0(rho_{l-1}) + kappa_1(rho_{l-1}))`` times
    the backward factor ``prod_{i > l} (1 + alpha^2 kappa_0(rho_{i-1}))``.
    At t = 1 the NTK is ``S_L (2 beta L + (2 if train_ends else 0))`` with
    ``beta = alpha^2 / (1 + alpha^2)``. The papers also multiply by a
    depth-dependent constant; plot ``kappa(t) / kappa(1)`` to be free of it.

    Args:
      t: cosines in [-1, 1], any shape.
      depth: number of residual blocks L >= 1.
      alpha: residual-branch scale; Belfer et al. take ``alpha = L^-gamma``.
      train_ends: whether A and v are trained too (True, as in
        ``ntkbook.models.resnet``); False is the papers' setting.
      input_variance: q with input covariance ``K_0 = q t``
        (``ntkbook.kernels``; ``1/d`` matches ``ntkbook.models.resnet``).

    Returns:
      NTK values, the shape of ``t``.
    """
    _check_train_ends(train_ends)
    _check_positive("input_variance", input_variance)
    rho = resnet_cosines(t, depth, alpha)
    scale = input_variance * (1 + alpha ** 2) ** np.arange(depth + 1)
    theta = scale[0] * rho[0] if train_ends else np.zeros_like(rho[0])
    for l in range(depth):
        theta = _block_step(theta, rho[l], scale[l], alpha ** 2)
    return theta + scale[depth] * rho[depth] if train_ends else theta


def resntk_spikiness(depth: int, alpha: float, *, train_ends: bool = True) -> float:
    """Closed form of ``ntkbook.kernels.spikiness`` for ``resntk``.

    Expand the recursion of ``resntk`` to first order in the chord s at t = 1,
    in units of ``S_l``: ``rho_l = 1 - s^2/2 + O(s^3)``,
    ``kappa_0(rho_l) = 1 - s / pi + O(s^2)``, ``kappa_1(rho_l) = 1 + O(s^2)``.
    With ``T_l = Theta_l / S_l`` and ``beta = alpha^2 / (1 + alpha^2)``,
    ``T_l(1) = T_0 + 2 beta l`` and the coefficient of -s in ``T_L`` is
    ``U_L = (beta / pi) (L (T_0 + 1) + beta L (L - 1))``; the read-out adds
    ``rho_L``, which has no term linear in s. Hence

        train_ends=False (T_0 = 0):  c_L = (1 + beta (L - 1)) / (2 pi),
        train_ends=True  (T_0 = 1):  c_L = beta (2L + beta L (L - 1)) / (pi (2 + 2 beta L)).

    With ``alpha = L^-gamma`` and fixed ends, c_L grows like L^(1 - 2 gamma)
    for gamma < 1/2, tends to 1/pi for gamma = 1/2 and to the two-layer value
    1/(2 pi) for gamma > 1/2: the two regimes of Belfer et al. 2021
    (arXiv 2104.03093). The same expansion of the bias-free FC-NTK with
    ``w_std = sqrt(2)`` gives ``L / (2 pi)``.

    Args:
      depth: number of residual blocks L >= 1.
      alpha: residual-branch scale (> 0).
      train_ends: as in ``resntk``.

    Returns:
      c_L (a float).
    """
    depth = _check_depth(depth)
    _check_positive("alpha", alpha)
    _check_train_ends(train_ends)
    beta = alpha ** 2 / (1 + alpha ** 2)
    if train_ends:
        return beta * (2 * depth + beta * depth * (depth - 1)) / (math.pi * (2 + 2 * beta * depth))
    return (1 + beta * (depth - 1)) / (2 * math.pi)
