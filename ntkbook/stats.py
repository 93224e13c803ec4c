"""Statistics over seeds: power-law exponents with their standard errors.

A chapter's claim is a statement about a random network, so its check is a
statement about a sample of initialisations. ``fit_slope`` fits the log-log
slope of a quantity measured at several widths for several independent
seeds, and gives the standard error of that slope, so a claim check can ask
for the exponent to be within the claim's tolerance with room to spare (the
notebooks size their seed counts so the standard error is a small part of
the tolerance: a check that holds for every seed, not a lucky one).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Slope", "fit_slope"]


class Slope(NamedTuple):
    """Log-log slope of a quantity against width, over seeds.

    Attributes:
      exponent: least-squares slope of ``mean_s log y[s, p]`` against
        ``log x[p]`` (the fit of the geometric mean over seeds, which equals
        the mean of the per-seed slopes).
      spread: standard deviation of the per-seed slopes (0.0 with one seed).
      stderr: standard error of ``exponent``, ``spread_ddof1 / sqrt(S)``
        (``nan`` with one seed).
      per_seed: the per-seed slopes, a tuple of floats.
    """

    exponent: float
    spread: float
    stderr: float
    per_seed: tuple


def fit_slope(widths, values) -> Slope:
    """Fit ``values[s, p] ~ C_s * widths[p] ** exponent`` over seeds ``s``.

    Args:
      widths: ``(P,)`` positive abscissae, P >= 2.
      values: ``(S, P)`` (or ``(P,)``) positive finite values, one row per
        independent seed.

    Returns:
      ``Slope(exponent, spread, stderr, per_seed)``. The per-seed slopes are
      the ordinary least-squares slopes of each row in log-log space;
      ``exponent`` is their mean, ``stderr`` their standard deviation (ddof 1)
      over ``sqrt(S)``.
    """
    widths = np.asarray(widths, dtype=float)
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if widths.ndim != 1 or widths.size < 2 or values.shape[1] != widths.shape[0]:
        raise ValueError(f"values must be (S, P) with P = len(widths) >= 2, got widths "
                         f"{widths.shape} and values {values.shape}")
    if np.any(widths <= 0) or np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise ValueError("widths and values must be positive and finite")
    log_x = np.log(widths) - np.log(widths).mean()
    per_seed = np.log(values) @ log_x / (log_x @ log_x)
    num_seeds = per_seed.size
    spread = float(np.std(per_seed)) if num_seeds > 1 else 0.0
    stderr = float(np.std(per_seed, ddof=1) / np.sqrt(num_seeds)) if num_seeds > 1 else float("nan")
    return Slope(float(per_seed.mean()), spread, stderr, tuple(float(v) for v in per_seed))
