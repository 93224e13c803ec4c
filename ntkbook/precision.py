"""Floating-point precision switch, called visibly by notebooks.

The package never changes precision on import; a notebook that needs
float64 (Hessians, spectra, long training) calls ``enable_float64()`` and
says why.
"""
from __future__ import annotations

import jax

__all__ = ["enable_float64"]


def enable_float64() -> None:
    """Make jax create float64 arrays by default (``jax_enable_x64``)."""
    jax.config.update("jax_enable_x64", True)

