"""Shared fixtures: float64 for the whole session, quick-mode notebook runs.

Notebook runs are cached per session under ``_build/quick/`` so the book
build test can reuse the executed notebooks instead of running them again.
Notebooks run with ``SEED = NTKBOOK_TEST_SEED`` (default 1, not the
notebooks' own default 0) so a claim that holds only for one lucky seed
fails here.
"""
import json
import os
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("NTKBOOK_NO_PROGRESS", "1")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
QUICK_DIR = ROOT / "_build" / "quick"
TEST_SEED = int(os.environ.get("NTKBOOK_TEST_SEED", "1"))

_runs: dict = {}


def run_quick(chapter: str, **extra) -> dict:
    """Run ``notebooks/{chapter}.ipynb`` in quick mode once per session.

    Returns the notebook's results JSON as a dict; the executed notebook is
    ``_build/quick/notebooks/{chapter}.ipynb``.
    """
    key = (chapter, tuple(sorted(extra.items())))
    if key not in _runs:
        from ntkbook.__main__ import run_chapter

        out_nb = QUICK_DIR / "notebooks" / f"{chapter}.ipynb"
        results = QUICK_DIR / "results" / f"{chapter}.json"
        if results.exists():
            results.unlink()
        params = {"QUICK": True, "SEED": TEST_SEED, "RESULTS_PATH": str(results), **extra}
        run_chapter(NOTEBOOKS / f"{chapter}.ipynb", params, out_nb)
        _runs[key] = json.loads(results.read_text())
    return _runs[key]


@pytest.fixture(scope="session")
def quick_results():
    """The ``run_quick`` function (results are cached per session)."""
    return run_quick
