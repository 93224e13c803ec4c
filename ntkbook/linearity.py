"""Transition to linearity: Hessian, gradient and kernel change versus width.

Liu, Zhu, Belkin 2020 (arXiv 2010.01092) explain why the tangent kernel
``K_w(x, x') = <grad_w f(w; x), grad_w f(w; x')>`` of a wide network is
constant during training: by Taylor's theorem with the Hessian
``H(w) = d^2 f(w; x) / dw^2``,

    ||grad f(w) - grad f(w0)|| <= sup_{B(w0, R)} ||H|| * R,
    |f(w) - f_lin(w)| <= sup_{B(w0, R)} ||H|| * R^2 / 2,

on the ball ``||w - w0|| <= R`` (their Sec. 2), and for networks whose last
layer is linear ``||H|| = O~(m^-1/2)`` in the width m while
``||grad f|| = O(1)`` (their Sec. 3). This module measures those quantities for
*any* width-parameterised model and packs them in a ``LinearityReport``:

* at initialisation, per width and seed: ``||H(w0; x)||_2`` (Lanczos on
  Hessian-vector products, ``ntkbook.hessian.spectral_norm``) and
  ``||grad f(w0; x)||`` at one probe input x;
* optionally, along gradient descent on the squared loss: the relative kernel
  change ``||K_t - K_0||_F / ||K_0||_F``, the distance to the linearisation
  ``f(w_t) - f_lin(w_t)``, the distance travelled ``||w_t - w0||``, the Hessian
  norms of the model and of the loss, and the loss itself;
* log-log slopes against the width (median over seeds, spread over seeds).

A model is given as ``model_fn(width) -> (init_fn, apply_fn, ...)`` following
the protocol of ``ntkbook.models`` (``init_fn(key) -> params``,
``apply_fn(params, x: (n, d)) -> (n, 1)``); e.g. ``lambda m: nk.mlp(d, m, 2)``.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import plotting
from .hessian import output_fn, single_input, spectral_norm
from .models import Model
from .ntk import empirical_ntk, kernel_change
from .stats import Slope, fit_slope
from .training import gradient_descent, mse_loss

__all__ = ["Slopes", "TrainPath", "LinearityReport", "output_fn", "grad_norm",
           "hessian_norm", "antisymmetric", "taylor_remainder", "train_path",
           "transition_report", "plot_report"]


class Slopes(NamedTuple):
    """Fitted slopes of a ``LinearityReport`` (None where not measured)."""

    hessian: Slope
    grad: Slope
    ntk_change: Slope | None
    linearization_gap: Slope | None


class TrainPath(NamedTuple):
    """Gradient descent at one width, ``S`` seeds, ``C`` checkpoints.

    Attributes:
      steps: ``(C + 1,)`` GD steps of the checkpoints (0 and T included).
      losses: ``(S, T + 1)`` training loss at every step.
      ntk_change: ``(S, C + 1)`` ``||K(w_t) - K(w_0)||_F / ||K(w_0)||_F`` on the
        training inputs.
      linearization_gap: ``(S, C + 1)`` RMS over the training inputs of
        ``f(w_t; x) - f_lin(w_t; x)``.
      distance: ``(S, C + 1)`` ``||w_t - w_0||`` (the radius R actually used).
      hessian_norm: ``(S, C + 1)`` ``||d^2 f(w_t; x_probe) / dw^2||_2``.
      loss_hessian_norm: ``(S, C + 1)`` ``||d^2 L(w_t) / dw^2||_2``, measured at
        w_0 and w_T only (NaN at the checkpoints in between).
      gauss_newton_norm: ``(S, C + 1)`` ``lambda_max(K(w_t)) / n``, the norm of
        the Gauss-Newton part ``J^T J / n`` of the loss Hessian.
      learning_rate: ``(S,)`` step sizes used.
    """

    steps: np.ndarray
    losses: np.ndarray
    ntk_change: np.ndarray
    linearization_gap: np.ndarray
    distance: np.ndarray
    hessian_norm: np.ndarray
    loss_hessian_norm: np.ndarray
    gauss_newton_norm: np.ndarray
    learning_rate: np.ndarray


class LinearityReport(NamedTuple):
    """The transition-to-linearity report of ``transition_report``.

    Attributes:
      widths: ``(P,)`` widths m.
      train_widths: ``(Q,)`` the widths that were trained (a subset), or None.
      hessian_norm: ``(S, P)`` ``||H(w0; x_probe)||_2`` at initialisation.
      grad_norm: ``(S, P)`` ``||grad_w f(w0; x_probe)||`` at initialisation.
      ntk_change: ``(S, Q)`` relative kernel change after training, or None.
      linearization_gap: ``(S, Q)`` largest RMS ``f - f_lin`` over the
        checkpoints, or None.
      loss_ratio: ``(S, Q)`` final / initial training loss, or None.
      paths: tuple of ``Q`` ``TrainPath`` (one per trained width), or None.
      slopes: ``Slopes``.
    """

    widths: np.ndarray
    train_widths: np.ndarray | None
    hessian_norm: np.ndarray
    grad_norm: np.ndarray
    ntk_change: np.ndarray | None
    linearization_gap: np.ndarray | None
    loss_ratio: np.ndarray | None
    paths: tuple | None
    slopes: Slopes


@partial(jax.jit, static_argnums=0)
def _grad_norm(fn, params):
    return jnp.linalg.norm(ravel_pytree(jax.grad(fn)(params))[0])


def grad_norm(apply_fn: Callable, params, x) -> float:
    """Euclidean norm ``||grad_w f(w; x)||`` over all parameters.

    Its square is the diagonal of the tangent kernel, ``K_w(x, x)``.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params: pytree w.
      x: ``(d,)`` or ``(1, d)`` input.
    """
    return float(_grad_norm(output_fn(apply_fn, x), params))


def hessian_norm(apply_fn: Callable, params, x, *, key, num_iters: int = 30) -> float:
    """Spectral norm ``||d^2 f(w; x) / dw^2||_2`` of the model's Hessian at one input.

    Matrix-free: ``num_iters`` Lanczos steps on Hessian-vector products
    (``ntkbook.hessian.spectral_norm``); 30 steps reach ~1e-5 relative
    accuracy on the MLPs of this book.

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params: pytree w.
      x: ``(d,)`` or ``(1, d)`` input.
      key: PRNG key for the Lanczos start vector.
      num_iters: Lanczos steps (>= 2).
    """
    return spectral_norm(output_fn(apply_fn, x), params, key=key, num_iters=num_iters)


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
      model: ``(init_fn, apply_fn, ...)`` following ``ntkbook.models``.

    Returns:
      ``Model`` with ``params = {"plus": w+, "minus": w-}``.
    """
    init_base, apply_base = model[0], model[1]

    def init_fn(key):
        params = init_base(key)
        return {"plus": params, "minus": params}

    def apply_fn(params, x):
        return (apply_base(params["plus"], x) - apply_base(params["minus"], x)) / jnp.sqrt(2.0)

    config = dict(getattr(model, "config", {}) or {}, antisymmetric=True)
    return Model(init_fn, apply_fn, config)


@partial(jax.jit, static_argnums=0)
def _remainder(apply_fn, params0, params, x):
    delta = jax.tree.map(jnp.subtract, params, params0)
    f0, df = jax.jvp(lambda p: apply_fn(p, x), (params0,), (delta,))
    return apply_fn(params, x) - f0 - df


def taylor_remainder(apply_fn: Callable, params0, params, x):
    """Distance to the linearisation: ``f(w; x) - f_lin(w; x)``.

    ``f_lin(w; x) = f(w0; x) + <grad_w f(w0; x), w - w0>`` (one JVP). By
    Taylor's theorem ``|f - f_lin| <= sup ||H|| * ||w - w0||^2 / 2`` on the
    segment [w0, w] (Liu, Zhu, Belkin 2020, arXiv 2010.01092, Sec. 2).

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      params0: pytree w0 (the linearisation point).
      params: pytree w, same structure.
      x: ``(n, d)`` inputs.

    Returns:
      ``(n, 1)`` remainders.
    """
    if jax.tree.structure(params0) != jax.tree.structure(params):
        raise ValueError("params0 and params must have the same pytree structure")
    if jnp.ndim(x) != 2:
        raise ValueError(f"x must be an (n, d) array, got shape {jnp.shape(x)}")
    return _remainder(apply_fn, params0, params, x)


@partial(jax.jit, static_argnums=0)
def _path_metrics(apply_fn, params0, params, ntk0, x):
    """K(w), its change from ``ntk0``, RMS Taylor remainder, ||w - w0||, lambda_max(K)/n."""
    ntk = empirical_ntk(apply_fn, params, x)
    gap = _remainder(apply_fn, params0, params, x)
    delta = ravel_pytree(jax.tree.map(jnp.subtract, params, params0))[0]
    return ntk, dict(ntk_change=kernel_change(ntk0, ntk),
                     linearization_gap=jnp.sqrt(jnp.mean(gap ** 2)),
                     distance=jnp.linalg.norm(delta),
                     gauss_newton_norm=jnp.linalg.eigvalsh(ntk)[-1] / x.shape[0])


def _checkpoint(model, pair_apply, pair0, pair, ntk0, x, x_probe, loss_fn, key, num_iters):
    """Path diagnostics of one seed at one checkpoint: ``(K(w), dict of floats)``.

    ``ntk0=None`` means "this is w0": K(w0) is computed and the change is 0.
    """
    ntk, metrics = _path_metrics(pair_apply, pair0, pair,
                                 jnp.ones((x.shape[0],) * 2) if ntk0 is None else ntk0, x)
    row = {k: 0.0 if (k == "ntk_change" and ntk0 is None) else float(v)
           for k, v in metrics.items()}
    keys = jax.random.split(key, 3)
    # The pair's Hessian is blockdiag(H(w+), -H(w-)) / sqrt(2): run the base model's
    # (already compiled) Lanczos loop on each branch.
    row["hessian_norm"] = max(
        hessian_norm(model[1], pair[branch], x_probe, key=k, num_iters=num_iters)
        for branch, k in (("plus", keys[0]), ("minus", keys[1]))) / np.sqrt(2.0)
    row["loss_hessian_norm"] = (np.nan if loss_fn is None else
                                spectral_norm(loss_fn, pair, key=keys[2], num_iters=num_iters))
    return ntk, row


def train_path(model, params0: Sequence, x_train, y_train, x_probe, *, key, num_steps: int,
               num_checkpoints: int = 4, num_iters: int = 30, loss_hessian: bool = True,
               learning_rate: float | None = None) -> TrainPath:
    """GD on ``L(w) = (1/2n) sum_i (f~(w; x_i) - y_i)^2`` for the antisymmetric pair.

    The trained model is ``antisymmetric(model)`` started at ``(w0, w0)``, so
    ``f~(w0) = 0`` and ``K~(w0) = K(w0)``. Each seed's run is split into
    ``num_checkpoints`` equal chunks of ``ntkbook.training.gradient_descent``
    (one compiled ``lax.scan`` shared by every chunk and seed); the fields of
    ``TrainPath`` are measured at every checkpoint. Default step:
    ``eta = n / lambda_max(K(w0))``, i.e. ``eta * lambda_max(J^T J / n) = 1``.

    Args:
      model: ``(init_fn, apply_fn, ...)`` of one width.
      params0: list of S initial pytrees w0 of ``model`` (one per seed).
      x_train: ``(n, d)`` inputs; y_train: ``(n, 1)`` or ``(n,)`` targets.
      x_probe: ``(d,)`` input at which the model Hessian is measured.
      key: PRNG key (Lanczos start vectors).
      num_steps: GD steps T, a multiple of ``num_checkpoints``.
      num_checkpoints: C >= 1.
      num_iters: Lanczos steps per spectral norm.
      loss_hessian: also measure ``||d^2 L / dw^2||_2`` at w_0 and w_T (NaN when
        False).
      learning_rate: fixed step for every seed, or None for the rule above.

    Returns:
      ``TrainPath``.
    """
    if not isinstance(num_checkpoints, int) or num_checkpoints < 1:
        raise ValueError(f"num_checkpoints must be a positive int, got {num_checkpoints!r}")
    if not isinstance(num_steps, int) or num_steps < 1 or num_steps % num_checkpoints:
        raise ValueError(f"num_steps must be a positive multiple of num_checkpoints="
                         f"{num_checkpoints}, got {num_steps!r}")
    x_train, x_probe = jnp.asarray(x_train), single_input(x_probe)
    pair_apply = antisymmetric(model).apply_fn
    loss_fn = mse_loss(pair_apply, x_train, y_train)
    chunk = num_steps // num_checkpoints
    records, losses, rates = [], [], []
    for s, p0 in enumerate(params0):
        pair0 = {"plus": p0, "minus": p0}
        pair, ntk0, curve, rows = pair0, None, [], []
        for c in range(num_checkpoints + 1):
            ntk, row = _checkpoint(model, pair_apply, pair0, pair, ntk0, x_train, x_probe,
                                   loss_fn if loss_hessian and c in (0, num_checkpoints) else None,
                                   jax.random.fold_in(jax.random.fold_in(key, s), c), num_iters)
            rows.append(row)
            if c == 0:
                ntk0, lr = ntk, learning_rate or 1.0 / row["gauss_newton_norm"]
            if c < num_checkpoints:
                run = gradient_descent(loss_fn, pair, learning_rate=lr, num_steps=chunk)
                pair = run.params
                curve.append(np.asarray(run.losses[:-1]))
        curve.append(np.asarray(run.losses[-1:]))
        records.append(rows)
        losses.append(np.concatenate(curve))
        rates.append(lr)
    fields = {name: np.array([[row[name] for row in rows] for rows in records])
              for name in records[0][0]}
    return TrainPath(steps=np.arange(num_checkpoints + 1) * chunk, losses=np.stack(losses),
                     learning_rate=np.asarray(rates), **fields)


def _init_stats(model, width_key, x_probe, num_seeds, num_iters):
    """Initial parameters, Hessian norms and gradient norms of one width."""
    params, hess, grad = [], [], []
    for s in range(num_seeds):
        init_key, lanczos_key = jax.random.split(jax.random.fold_in(width_key, s))
        p = model[0](init_key)
        params.append(p)
        hess.append(hessian_norm(model[1], p, x_probe, key=lanczos_key, num_iters=num_iters))
        grad.append(grad_norm(model[1], p, x_probe))
    return params, hess, grad


def transition_report(model_fn: Callable, widths: Sequence[int], x_probe, *, key,
                      num_seeds: int, x_train=None, y_train=None,
                      train_widths: Sequence[int] | None = None,
                      num_train_seeds: int | None = None, num_steps: int = 2000,
                      num_checkpoints: int = 4, num_iters: int = 30,
                      loss_hessian: bool | Sequence[int] = True,
                      progress: Callable | None = None) -> LinearityReport:
    """Transition-to-linearity report of a width-parameterised model.

    For every width m and seed s (keys ``fold_in(fold_in(k, m), s)`` from
    ``k, k_path = split(key)``, so adding a width or a seed leaves the other
    draws unchanged):

    1. at initialisation, ``||H(w0; x_probe)||_2`` and ``||grad f(w0; x_probe)||``
       (Liu, Zhu, Belkin 2020, arXiv 2010.01092: ``O~(m^-1/2)`` and ``O(1)``
       when the last layer is linear);
    2. if ``x_train`` is given, gradient descent (``train_path``) on the
       ``antisymmetric`` pair built from the same w0, so ``f(w0) = 0`` at every
       width, recording the kernel change and the Taylor remainder along the
       path.

    Args:
      model_fn: ``width -> (init_fn, apply_fn, ...)``, e.g.
        ``lambda m: nk.mlp(d, m, 2, activation="tanh")``.
      widths: increasing widths (at least 2).
      x_probe: ``(d,)`` input for the Hessian and gradient norms.
      key: root PRNG key.
      num_seeds: initialisations per width (>= 1).
      x_train: optional ``(n, d)`` training inputs; y_train: ``(n, 1)`` targets.
      train_widths: the widths to train (a subset of ``widths``; all when None).
      num_train_seeds: train the first this many seeds (all when None).
      num_steps, num_checkpoints: GD steps and checkpoints (see ``train_path``).
      num_iters: Lanczos steps per spectral norm.
      loss_hessian: measure the loss Hessian along the path (see ``train_path``)
        at every trained width (True), at none (False), or at the listed widths.
      progress: optional wrapper of the width loop (e.g.
        ``ntkbook.notebook.progress``).

    Returns:
      ``LinearityReport`` with slopes fitted over all widths.
    """
    widths = list(widths)
    if len(widths) < 2 or any(not isinstance(m, (int, np.integer)) or m < 1 for m in widths) \
            or any(a >= b for a, b in zip(widths[:-1], widths[1:])):
        raise ValueError(f"widths must be >= 2 increasing positive ints, got {widths!r}")
    if not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"num_seeds must be a positive int, got {num_seeds!r}")
    if (x_train is None) != (y_train is None):
        raise ValueError("x_train and y_train must be given together")
    train_widths = widths if train_widths is None or x_train is None else list(train_widths)
    if x_train is not None and (len(train_widths) < 2 or not set(train_widths) <= set(widths)):
        raise ValueError(f"train_widths must be >= 2 of the widths {widths}, got {train_widths!r}")
    num_train_seeds = num_seeds if num_train_seeds is None else num_train_seeds
    if not isinstance(num_train_seeds, int) or not 1 <= num_train_seeds <= num_seeds:
        raise ValueError(f"num_train_seeds must be an int in [1, num_seeds={num_seeds}], "
                         f"got {num_train_seeds!r}")
    x_probe = single_input(x_probe)
    init_key, path_key = jax.random.split(key)
    hess, grad, paths = [], [], []
    for m in (progress or (lambda it: it))(widths):
        model = model_fn(int(m))
        width_key = jax.random.fold_in(init_key, int(m))
        params, h, g = _init_stats(model, width_key, x_probe, num_seeds, num_iters)
        hess.append(h)
        grad.append(g)
        if x_train is not None and m in train_widths:
            paths.append(train_path(
                model, params[:num_train_seeds], x_train, y_train, x_probe,
                key=jax.random.fold_in(path_key, int(m)), num_steps=num_steps,
                num_checkpoints=num_checkpoints, num_iters=num_iters,
                loss_hessian=(m in loss_hessian) if isinstance(loss_hessian, (list, tuple))
                else bool(loss_hessian)))
    return _assemble(np.asarray(widths), np.array(hess).T, np.array(grad).T,
                     np.asarray(sorted(train_widths)) if paths else None,
                     tuple(paths) if paths else None)


def _assemble(widths, hess, grad, train_widths, paths) -> LinearityReport:
    """Summary arrays (seeds x widths) and slopes from the per-width results."""
    change = gap = ratio = None
    if paths:
        change = np.stack([p.ntk_change[:, -1] for p in paths], axis=1)
        gap = np.stack([p.linearization_gap.max(axis=1) for p in paths], axis=1)
        ratio = np.stack([p.losses[:, -1] / p.losses[:, 0] for p in paths], axis=1)
    slopes = Slopes(hessian=fit_slope(widths, hess), grad=fit_slope(widths, grad),
                    ntk_change=None if change is None else fit_slope(train_widths, change),
                    linearization_gap=None if gap is None else fit_slope(train_widths, gap))
    return LinearityReport(widths, train_widths, hess, grad, change, gap, ratio, paths, slopes)


_CURVES = (("hessian_norm", r"$\|H(w_0; x)\|_2$"),
           ("grad_norm", r"$\|\nabla f(w_0; x)\|$"),
           ("ntk_change", r"$\|K_T - K_0\|_F / \|K_0\|_F$"),
           ("linearization_gap", r"$\max_t$ RMS $|f - f_{\rm lin}|$"))


def plot_report(report: LinearityReport, ax=None, *, title: str | None = None):
    """One log-log panel of a ``LinearityReport`` against width.

    Each measured quantity: median over seeds, min-max band, fitted slope in
    the legend (``ntkbook.plotting.loglog_seeds``), plus a dashed ``m^-1/2``
    reference through the first Hessian point. Matplotlib is only touched
    through ``ntkbook.plotting``.

    Args:
      report: a ``LinearityReport``.
      ax: matplotlib axes; a new ``ntkbook.plotting.figure()`` when None.
      title: optional axes title.

    Returns:
      The axes.
    """
    if not isinstance(report, LinearityReport):
        raise ValueError(f"report must be a LinearityReport, got {type(report).__name__}")
    if ax is None:
        _, ax = plotting.figure()
    for (field, label), color in zip(_CURVES, plotting.COLORS):
        values = getattr(report, field)
        if values is not None:
            x = report.widths if values.shape[1] == len(report.widths) else report.train_widths
            plotting.loglog_seeds(ax, x, values, label=label, color=color)
    widths = np.asarray(report.widths, dtype=float)
    ref = np.median(report.hessian_norm[:, 0]) * (widths / widths[0]) ** -0.5
    ax.plot(widths, ref, "k--", lw=1, label=r"$\propto m^{-1/2}$")
    ax.set_xlabel("width $m$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return ax
