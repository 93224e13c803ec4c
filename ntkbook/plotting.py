"""The book's one figure style. The only module that imports matplotlib.

Figures get an explicit white background (readable in the theme's dark
mode); no global rcParams are changed and ``plt.show()`` is never called.
"""
from __future__ import annotations

import numpy as np

from .stats import fit_slope

__all__ = ["figure", "loglog_seeds", "slope_label"]

COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def figure(ncols: int = 1, nrows: int = 1, *, width: float = 4.2, height: float = 3.4):
    """``(fig, axes)`` with the book's size and a white background.

    ``axes`` is squeezed as by ``plt.subplots``: one Axes for a 1x1 grid, a
    1-d array for a single row or column, else a 2-d array.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=True, layout="constrained")
    fig.patch.set_facecolor("white")
    for ax in np.atleast_1d(axes).flat:
        ax.set_facecolor("white")
        ax.grid(True, which="major", alpha=0.3)
    return fig, axes


def slope_label(exponent: float, spread: float | None = None) -> str:
    """``"slope -0.49 ± 0.03"`` (spread omitted when None)."""
    return f"slope {exponent:+.2f}" + ("" if spread is None else f" ± {spread:.2f}")


def loglog_seeds(ax, x, y_by_seed, *, label: str, color=None, fit: bool = True,
                 marker: str = "o"):
    """Log-log plot of a quantity over seeds: geometric-mean line, min–max band, fitted slope.

    Args:
      ax: matplotlib axes.
      x: ``(p,)`` abscissae (e.g. widths).
      y_by_seed: ``(s, p)`` values, one row per seed.
      label: legend label; the fitted slope (``ntkbook.stats.fit_slope``: the
        mean of the per-seed slopes) and the spread of the per-seed slopes are
        appended when ``fit``.

    Returns:
      ``(exponent, spread)``: the fitted exponent and the std of the per-seed
      exponents (``(None, None)`` when not ``fit``).
    """
    x = np.asarray(x, dtype=float)
    y = np.atleast_2d(np.asarray(y_by_seed, dtype=float))
    centre = np.exp(np.log(y).mean(axis=0))
    exponent = spread = None
    if fit:
        exponent, spread, _, _ = fit_slope(x, y)
        spread = spread if len(y) > 1 else None
        label = f"{label} ({slope_label(exponent, spread)})"
    (line,) = ax.plot(x, centre, marker=marker, color=color, label=label)
    if len(y) > 1:
        ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return exponent, spread
