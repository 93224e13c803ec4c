"""Margin losses on separable data, normalized gradient descent, and the margin's growth.

With labels ``y_i`` in {-1, +1} and a network ``f``, the margins are
``z_i = y_i f(x_i)`` and the loss is ``L = (1/n) sum_i l(z_i)`` with the
exponential ``l(z) = e^{-z}`` or logistic ``l(z) = log(1 + e^{-z})`` loss
(``l(z) = (1 - z)^2 / 2``, the squared loss, for contrast). On separable data
``L -> 0`` only if the weights grow without bound; for a network positively
homogeneous of degree K in its parameters ``theta``, gradient flow then

* converges in direction: ``theta / ||theta||`` has a limit (Ji & Telgarsky
  2020, arXiv 2006.06657, Thm 3.1), and
* increases the (smoothed) normalized margin ``min_i z_i / ||theta||^K``
  once the data are fitted (Lyu & Li 2020, "Gradient descent maximizes the
  margin of homogeneous neural networks", ICLR 2020, arXiv 1906.05890,
  Thm 4.1), towards a KKT point of the max-margin problem.

*Normalized gradient descent on log L* (chapter 6)::

    g = grad log L(theta),   theta <- theta - eta g / ||g||    (||.|| over all leaves)

Since ``grad log L = grad L / L`` is a positive multiple of ``grad L``, this
follows gradient flow on L up to a change of time (exactly as eta -> 0), so
the flow's invariances and implicit bias survive; the loss itself (which
underflows past margins ~ 745 in float64) is never formed; and each step has
length eta, so ``||theta||`` grows linearly in the number of steps.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["LOSSES", "log_loss", "mean_loss", "normalized_gradient", "normalized_margin",
           "direction_cosine"]

LOSSES = ("exponential", "logistic", "squared")


def _log_softplus(u):
    """``log(log(1 + e^u))`` without underflow for u << 0 (``= u + log(log1p(t)/t)``, t = e^u)."""
    t = jnp.exp(jnp.minimum(u, -20.0))
    small = u + jnp.log1p(-t / 2 + t * t / 3)      # log1p(t)/t = 1 - t/2 + t^2/3 - ...
    big = jnp.log(jax.nn.softplus(jnp.maximum(u, -20.0)))
    return jnp.where(u < -20.0, small, big)


def log_loss(z, loss: str):
    """``log L`` with ``L = (1/n) sum_i l(z_i)``, computed without underflow.

    ``l(z) = e^{-z}`` (exponential), ``log(1 + e^{-z})`` (logistic),
    ``(1 - z)^2 / 2`` (squared, i.e. ``(f - y)^2 / 2`` for y = +-1).
    ``log L = logsumexp_i(log l(z_i)) - log n`` with ``log l`` evaluated in
    closed form (``-z`` for the exponential loss), so margins in the
    thousands are fine in float64.

    Args:
      z: ``(n,)`` margins ``y_i f(x_i)``.
      loss: one of ``LOSSES``.
    """
    if loss == "exponential":
        log_l = -z
    elif loss == "logistic":
        log_l = _log_softplus(-z)
    elif loss == "squared":
        return jnp.log(jnp.mean(0.5 * (1.0 - z) ** 2))
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return jax.scipy.special.logsumexp(log_l) - jnp.log(z.shape[0])


def mean_loss(z, loss: str):
    """The naive ``L = (1/n) sum_i l(z_i)`` (underflows for large margins); ``z: (n,)``."""
    fns = {"exponential": lambda z: jnp.exp(-z), "logistic": lambda z: jnp.log1p(jnp.exp(-z)),
           "squared": lambda z: 0.5 * (1.0 - z) ** 2}
    if loss not in fns:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return jnp.mean(fns[loss](z))


def normalized_gradient(learning_rate) -> optax.GradientTransformation:
    """Fixed-length steps: ``updates = -learning_rate * g / ||g||`` (an optax transform).

    ``||g|| = sqrt(sum over leaves of sum g^2)`` (``optax.tree.norm``), so
    ``||theta_{t+1} - theta_t|| = learning_rate`` exactly. Applied to the
    gradient of ``log L`` this is the normalized gradient descent of the
    module docstring. Stateless; the gradient must be non-zero.

    Args:
      learning_rate: step length eta > 0 (a float, or a traced scalar under
        ``jax.vmap``, which is not validated).
    """
    if not isinstance(learning_rate, jax.core.Tracer) and not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        scale = -learning_rate / optax.tree.norm(updates)
        return jax.tree.map(lambda g: scale * g, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def normalized_margin(z, norm, *, degree: int):
    """``gamma = min_i z_i / ||theta||^K``: ``z: (..., n)``, ``norm: (...)`` -> ``(...)``.

    Invariant under ``theta -> c theta`` (c > 0) for a network positively
    homogeneous of degree K = ``degree``; Lyu & Li 2020 (arXiv 1906.05890,
    Thm 4.1) show that gradient flow increases a smoothed version of it
    once ``min_i z_i > 0``, and that it converges.
    """
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be a positive int, got {degree!r}")
    return jnp.min(z, axis=-1) / jnp.asarray(norm) ** degree


def direction_cosine(params_a, params_b):
    """``<theta_a, theta_b> / (||theta_a|| ||theta_b||)`` over all leaves of two pytrees.

    1 exactly when ``theta_b = c theta_a`` with c > 0: the cosine between the
    directions ``theta / ||theta||`` at two times measures directional
    convergence (Ji & Telgarsky 2020, arXiv 2006.06657). Both pytrees have
    the same structure and shapes; returns a scalar (``jax.vmap`` it over
    snapshots).
    """
    dot = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)))
    return dot / (optax.tree.norm(params_a) * optax.tree.norm(params_b))
