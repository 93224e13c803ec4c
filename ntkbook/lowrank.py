"""Low-rank implicit bias of ReLU networks with a linear tail (chapter 6).

Le & Jegelka 2022 ("Training invariances and the low-rank phenomenon: beyond
linear networks", arXiv 2201.11968 v2) extend Ji & Telgarsky 2019 (arXiv
1810.02032: deep linear networks trained by gradient flow on the exponential
or logistic loss of linearly separable data converge in direction to rank-1,
aligned matrices) to ReLU networks, for (a) the linear layers after the last
ReLU and (b) the submatrices of stably active neurons.

The network (bias-free, standard parameterisation, a list of matrices)::

    h_0 = x,  h_l = relu(W_l h_{l-1})                 l = 1..num_relu
              h_l = h_{l-1} + relu(W_l h_{l-1})       l >= 2 with ``skip=True``
    f(x) = W_K ... W_{num_relu+1} h_{num_relu}         (the *linear tail*)

``params = [W_1, ..., W_K]`` with ``W_l: (m_l, m_{l-1})`` and ``m_K = 1``;
``num_relu = 0`` is a deep linear network. Margins ``z_i = y_i f(x_i)`` with
labels ``y_i`` in {-1, +1}.

Training is *normalised gradient descent on log L*::

    g = grad log L(w),   w <- w - eta g / ||g||       (||.|| over all matrices)

Since ``grad log L = grad L / L`` is a positive multiple of ``grad L``, this is
gradient flow on L up to a change of time (exactly so as eta -> 0): the
training invariances of gradient flow survive, the loss itself (which
underflows past margins ~ 745 in float64) is never formed, and every step has
length eta so the weight norm grows linearly in the number of steps.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOSSES", "ball_data", "init_params", "relu_preactivations", "apply", "margins",
           "log_loss", "mean_loss", "TrainHistory", "train", "sigma_ratio",
           "stable_rank", "top_singular_vectors", "alignment", "stable_neurons",
           "submatrix", "neuron_balancedness", "matrix_invariance", "summarize",
           "stable_analysis"]

LOSSES = ("exponential", "logistic", "squared")


def _check_arch(params, num_relu, skip):
    if not isinstance(params, (list, tuple)) or len(params) < 2:
        raise ValueError("params must be a list of at least 2 matrices")
    if not isinstance(num_relu, int) or not 0 <= num_relu < len(params):
        raise ValueError(f"num_relu must be an int in [0, {len(params) - 1}], got {num_relu!r}")
    if params[-1].shape[0] != 1:
        raise ValueError(f"params[-1] must have one row (scalar output), got {params[-1].shape}")
    if skip and any(params[l].shape[0] != params[l].shape[1] for l in range(1, num_relu)):
        raise ValueError("skip=True needs square ReLU matrices W_2..W_num_relu")


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
    """Network output ``f(x): (n,)`` for ``x: (n, d)`` (module docstring)."""
    _, h = relu_preactivations(params, x, num_relu=num_relu, skip=skip)
    for w in params[num_relu:]:
        h = h @ w.T
    return h[:, 0]


def margins(params, x, y, *, num_relu: int, skip: bool = False):
    """``z_i = y_i f(x_i)``: ``(n,)``."""
    return y * apply(params, x, num_relu=num_relu, skip=skip)


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
    """The naive ``L = (1/n) sum_i l(z_i)`` (underflows for large margins; for tests)."""
    fns = {"exponential": lambda z: jnp.exp(-z), "logistic": lambda z: jnp.log1p(jnp.exp(-z)),
           "squared": lambda z: 0.5 * (1.0 - z) ** 2}
    if loss not in fns:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return jnp.mean(fns[loss](z))


class TrainHistory(NamedTuple):
    """Output of ``train``.

    Attributes:
      params: final list of matrices.
      steps: ``(R + 1,)`` step counts of the snapshots (0 first).
      snapshots: list of K arrays ``(R + 1, m_l, m_{l-1})``: the matrices at ``steps``.
      log_loss: ``(R + 1,)`` log L at ``steps``.
    """

    params: list
    steps: np.ndarray
    snapshots: list
    log_loss: jnp.ndarray


def _flag_forward(params, x, relu_flags, skip_flags):
    """``apply`` with the architecture as traced flags (one compile for all variants)."""
    h = x
    for l, w in enumerate(params[:-1]):
        a = h @ w.T
        act = jnp.where(relu_flags[l], jax.nn.relu(a), a)
        h = act + skip_flags[l] * h if a.shape == h.shape else act
    return (h @ params[-1].T)[:, 0]


def _run(params, x, y, seg, cfg):
    """The compiled loop: ``cfg = (relu_flags, skip_flags, loss_index, normalized, eta)``."""
    relu_flags, skip_flags, loss_index, normalized, eta = cfg
    branches = [partial(log_loss, loss=name) for name in LOSSES]

    def objective(p):
        z = y * _flag_forward(p, x, relu_flags, skip_flags)
        return jax.lax.switch(loss_index, branches, z)

    def step(_, p):
        logl, g = jax.value_and_grad(objective)(p)
        norm = jnp.sqrt(sum(jnp.sum(gi ** 2) for gi in g))
        # grad L = L grad log L: the plain step needs no second gradient
        scale = jnp.where(normalized, eta / norm, eta * jnp.exp(logl))
        return [w - scale * gi for w, gi in zip(p, g)]

    def segment(p, length):
        p = jax.lax.fori_loop(0, length, step, p)
        return p, (p, objective(p))

    final, (snaps, logl) = jax.lax.scan(segment, params, seg)
    snaps = [jnp.concatenate([w0[None], s]) for w0, s in zip(params, snaps)]
    return final, snaps, jnp.concatenate([objective(params)[None], logl])


_run_one = jax.jit(_run)


def _config(params, *, num_relu, loss, eta, skip=False, rule="normalized"):
    _check_arch(params, num_relu, skip)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if rule not in ("normalized", "plain"):
        raise ValueError(f"rule must be 'normalized' or 'plain', got {rule!r}")
    if not (isinstance(eta, (int, float)) and eta > 0):
        raise ValueError(f"eta must be > 0, got {eta!r}")
    layers = np.arange(len(params) - 1)
    return (jnp.asarray(layers < num_relu), jnp.asarray(1.0 * (skip & (layers >= 1) & (layers < num_relu))),
            jnp.asarray(LOSSES.index(loss)), jnp.asarray(rule == "normalized"), jnp.asarray(float(eta)))


def _segments(record_steps):
    steps = np.asarray(record_steps)
    if (steps.ndim != 1 or steps.size < 1 or not np.issubdtype(steps.dtype, np.integer)
            or steps[0] < 1 or np.any(np.diff(steps) <= 0)):
        raise ValueError(f"record_steps must be increasing positive ints, got {record_steps!r}")
    return steps, jnp.asarray(np.diff(steps, prepend=0))


def train(params, x, y, *, num_relu: int, loss: str, eta: float, record_steps,
          skip: bool = False, rule: str = "normalized") -> TrainHistory:
    """Full-batch gradient descent, one compiled ``lax.scan``, with snapshots.

    ``rule="normalized"``: ``w <- w - eta g/||g||`` with ``g = grad log L``
    (module docstring; for the exponential and logistic losses).
    ``rule="plain"``: ``w <- w - eta grad L`` (for the squared loss, whose
    minimum is at finite weights).

    The architecture and loss enter the compiled loop as traced flags, so
    every variant with the same matrix shapes shares one compilation.

    Args:
      params: list of K matrices (``init_params``).
      x: ``(n, d)`` inputs; y: ``(n,)`` labels in {-1, +1}.
      num_relu, skip: architecture (module docstring).
      loss: one of ``LOSSES``.
      eta: step size (> 0).
      record_steps: increasing step counts ``t_1 < ... < t_R`` at which to
        keep a snapshot (e.g. log-spaced); training runs ``t_R`` steps.
      rule: ``"normalized"`` or ``"plain"``.
    """
    cfg = _config(params, num_relu=num_relu, loss=loss, eta=eta, skip=skip, rule=rule)
    steps, seg = _segments(record_steps)
    final, snaps, logl = _run_one(list(params), x, y, seg, cfg)
    return TrainHistory(final, np.concatenate([[0], steps]), snaps, logl)


def sigma_ratio(w):
    """``sigma_2(W) / sigma_1(W)`` for ``w: (..., m, n)`` with min(m, n) >= 2.

    0 exactly for a rank-1 matrix, 1 for a multiple of an orthogonal matrix.
    """
    if min(w.shape[-2:]) < 2:
        raise ValueError(f"w must have at least 2 rows and 2 columns, got {w.shape}")
    s = jnp.linalg.svd(w, compute_uv=False)
    return s[..., 1] / s[..., 0]


def stable_rank(w):
    """``||W||_F^2 / ||W||_2^2 = sum_k sigma_k^2 / sigma_1^2`` in [1, rank W]; ``w: (..., m, n)``."""
    s = jnp.linalg.svd(w, compute_uv=False)
    return jnp.sum(s ** 2, axis=-1) / s[..., 0] ** 2


def top_singular_vectors(w):
    """``(u_1, v_1)``: top left ``(..., m)`` and right ``(..., n)`` singular vectors of ``w``."""
    u, _, vt = jnp.linalg.svd(w, full_matrices=False)
    return u[..., :, 0], vt[..., 0, :]


def alignment(w_lower, w_upper):
    """``|<u_1(W_l), v_1(W_{l+1})>|`` for consecutive layers (``W_{l+1} W_l`` defined).

    Ji & Telgarsky 2019 (arXiv 1810.02032, Thm 2.2): tends to 1 for deep linear
    networks. ``w_lower: (..., m, n)``, ``w_upper: (..., k, m)`` -> ``(...,)``.
    """
    if w_lower.shape[-2] != w_upper.shape[-1]:
        raise ValueError(f"w_upper {w_upper.shape} cannot follow w_lower {w_lower.shape}")
    u, _ = top_singular_vectors(w_lower)
    _, v = top_singular_vectors(w_upper)
    return jnp.abs(jnp.sum(u * v, axis=-1))


def stable_neurons(preacts):
    """Neurons active (pre-activation > 0) on every example and every snapshot.

    Args:
      preacts: ``(..., n, m)`` pre-activations of one layer (leading axes,
        e.g. snapshots, are all required to be positive too).

    Returns:
      bool ``(m,)``.
    """
    a = jnp.asarray(preacts)
    if a.ndim < 2:
        raise ValueError(f"preacts must be (..., n, m), got shape {a.shape}")
    return np.asarray(jnp.all(a.reshape(-1, a.shape[-1]) > 0, axis=0))


def submatrix(w, rows=None, cols=None):
    """``W[rows][:, cols]`` with bool masks or index arrays (None keeps all); ``w: (..., m, n)``."""
    if rows is not None:
        w = w[..., np.asarray(rows), :]
    if cols is not None:
        w = w[..., np.asarray(cols)]
    return w


def neuron_balancedness(w_in, w_out):
    """Per-neuron ``||W_l[j, :]||^2 - ||W_{l+1}[:, j]||^2``: ``(..., m_l)``.

    Conserved by gradient flow at every neuron j of a ReLU (or linear) layer
    without skip connections, since relu(a) = relu'(a) a (Du, Hu, Lee 2018,
    arXiv 1806.00900, Thm 2.1).
    """
    return jnp.sum(w_in ** 2, axis=-1) - jnp.sum(w_out ** 2, axis=-2)


def matrix_invariance(w_in, w_out, neurons=None):
    """``W_{l+1}[:, S]^T W_{l+1}[:, S] - W_l[S, :] W_l[S, :]^T``: ``(..., |S|, |S|)``.

    Conserved by gradient flow when layer l is linear (S = all neurons;
    Arora, Cohen, Hazan 2018, arXiv 1802.06509, Thm 1) or when every neuron of
    S is active on every training example (Le & Jegelka 2022, the local
    invariance for stably activated neurons). Its diagonal is
    ``neuron_balancedness``.
    """
    w_in = submatrix(w_in, rows=neurons)
    w_out = submatrix(w_out, cols=neurons)
    return jnp.swapaxes(w_out, -1, -2) @ w_out - w_in @ jnp.swapaxes(w_in, -1, -2)


def summarize(hist: TrainHistory, *, num_relu: int) -> dict:
    """Per-snapshot diagnostics of a ``train`` run (matrices named W1..WK).

    Returns a dict of numpy arrays over the ``R + 1`` snapshots:
      ``steps``, ``log_loss``, ``norm`` (``||theta||``, all matrices),
      ``frobenius`` {name: ``||W_l||_F``}, ``sigma_ratio`` and ``stable_rank``
      {name: ...} for every matrix with >= 2 rows and columns, and
      ``alignment`` {"Wl-Wl+1": ``|<u_1(W_l), v_1(W_{l+1})>|``} for consecutive
      matrices of the linear tail (``l > num_relu``).
    """
    snaps = hist.snapshots
    names = [f"W{l + 1}" for l in range(len(snaps))]
    out = {"steps": np.asarray(hist.steps), "log_loss": np.asarray(hist.log_loss),
           "norm": np.sqrt(sum(np.asarray(jnp.sum(s ** 2, axis=(1, 2))) for s in snaps)),
           "frobenius": {n: np.asarray(jnp.linalg.norm(s, axis=(1, 2))) for n, s in zip(names, snaps)},
           "sigma_ratio": {}, "stable_rank": {}, "alignment": {}}
    for n, s in zip(names, snaps):
        if min(s.shape[1:]) >= 2:
            out["sigma_ratio"][n] = np.asarray(sigma_ratio(s))
            out["stable_rank"][n] = np.asarray(stable_rank(s))
    for l in range(num_relu, len(snaps) - 1):
        out["alignment"][f"{names[l]}-{names[l + 1]}"] = np.asarray(alignment(snaps[l], snaps[l + 1]))
    return out


def stable_analysis(hist: TrainHistory, x, *, num_relu: int, late_fraction: float = 0.5) -> dict:
    """Stably active neurons of the last ReLU layer and what becomes rank 1.

    A neuron of ReLU layer k = ``num_relu`` (no skip connections) is *stable*
    if its pre-activation is > 0 on every example at every snapshot in the
    last ``late_fraction`` of the run. With S that set and the linear matrix
    ``W_{k+1}`` after it, gradient flow conserves
    ``W_{k+1}[:, S]^T W_{k+1}[:, S] - W_k[S, :] W_k[S, :]^T`` (``matrix_invariance``);
    as ``W_{k+1}`` tends to rank 1 with growing norm, so does ``W_k[S, :]``
    (Le & Jegelka 2022, arXiv 2201.11968 v2, local invariance of stably
    activated neurons), while the full ``W_k`` need not.

    Returns a dict: ``stable`` (bool ``(m_k,)``), ``stable_previous`` (stable
    neurons of layer k-1, or None when k = 1), ``sigma_ratio`` {"full", "stable
    rows", "stable block" (``W_k[S, S_{k-1}]``, when defined)} each
    ``(R + 1,)`` or None when fewer than 2 rows/columns, ``row_norm_stable``
    and ``row_norm_other`` (mean row norms at the end), and the drifts
    ``max |I(T) - I(0)|`` of the invariants at layer k relative to
    ``||W_k(T)||_2^2``: ``drift_balancedness``, ``drift_full``, ``drift_stable``.
    """
    if not isinstance(num_relu, int) or num_relu < 1:
        raise ValueError(f"num_relu must be an int >= 1, got {num_relu!r}")
    if not 0 < late_fraction <= 1:
        raise ValueError(f"late_fraction must be in (0, 1], got {late_fraction!r}")
    snaps = hist.snapshots
    first = int(np.floor((1 - late_fraction) * (len(hist.steps) - 1)))
    pre = jax.vmap(lambda p: relu_preactivations(p, x, num_relu=num_relu)[0])(
        [s[first:] for s in snaps])
    masks = [stable_neurons(a) for a in pre]
    s_k, s_prev = masks[-1], (masks[-2] if num_relu >= 2 else None)
    w_k, w_next = snaps[num_relu - 1], snaps[num_relu]

    def ratio(w):
        return np.asarray(sigma_ratio(w)) if min(w.shape[1:]) >= 2 else None

    def drift(inv):
        return float(jnp.max(jnp.abs(inv[-1] - inv[0]))) if inv.size else 0.0

    scale = float(jnp.linalg.norm(w_k[-1], 2)) ** 2
    rows = np.linalg.norm(np.asarray(w_k[-1]), axis=1)
    return {"stable": s_k, "stable_previous": s_prev,
            "sigma_ratio": {"full": ratio(w_k), "stable rows": ratio(submatrix(w_k, s_k)),
                            "stable block": None if s_prev is None else ratio(submatrix(w_k, s_k, s_prev))},
            "row_norm_stable": float(rows[s_k].mean()) if s_k.any() else 0.0,
            "row_norm_other": float(rows[~s_k].mean()) if (~s_k).any() else 0.0,
            "drift_balancedness": drift(neuron_balancedness(w_k, w_next)) / scale,
            "drift_full": drift(matrix_invariance(w_k, w_next)) / scale,
            "drift_stable": drift(matrix_invariance(w_k, w_next, s_k)) / scale}
