"""Shared fixtures: float64 for the whole session, quick-mode notebook runs,
and session fixtures computed in the background.

Notebook runs are cached per session under ``_build/quick/`` so the book
build test can reuse the executed notebooks instead of running them again.
Notebooks run with ``SEED = NTKBOOK_TEST_SEED`` (default 1, not the
notebooks' own default 0) so a claim that holds only for one lucky seed
fails here.
"""
import json
import os
import threading
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
_prefetch: dict = {}
NUM_PARALLEL_RUNS = int(os.environ.get("NTKBOOK_TEST_JOBS", "2"))
# Background work (quick runs, grading) runs at this nice value, and its child
# processes with it: the tests in the main thread are the session's critical
# path, and the background uses what CPU they leave.
BACKGROUND_NICE = int(os.environ.get("NTKBOOK_TEST_NICE", "10"))


def _lower_priority() -> None:
    """Raise the calling thread's nice value to ``BACKGROUND_NICE`` (Linux: per
    thread, inherited by the processes it starts)."""
    if hasattr(os, "nice"):
        os.nice(max(0, BACKGROUND_NICE - os.nice(0)))


def _execute(chapter: str, params: dict) -> str | None:
    """Run one chapter (in a worker process); the error text, or None on success."""
    from ntkbook.runner import run_chapter

    try:
        run_chapter(NOTEBOOKS / f"{chapter}.ipynb", params,
                    QUICK_DIR / "notebooks" / f"{chapter}.ipynb")
    except Exception as err:  # noqa: BLE001 -- reported by run_quick in the test process
        return f"{type(err).__name__}: {err}"
    return None


def _quick_params(chapter: str, extra: dict) -> tuple[dict, Path]:
    results = QUICK_DIR / "results" / f"{chapter}.json"
    if results.exists():
        results.unlink()
    return {"QUICK": True, "SEED": TEST_SEED, "RESULTS_PATH": str(results), **extra}, results


def _start_all_quick_runs() -> None:
    """Start every chapter's quick run, ``NUM_PARALLEL_RUNS`` at a time (once per session).

    Started when collection ends, if any selected test reads a quick run: the
    chapters run in worker processes while the tests that do not need them run.
    """
    if _prefetch:
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=NUM_PARALLEL_RUNS,
                               mp_context=multiprocessing.get_context("spawn"),
                               initializer=_lower_priority)
    from ntkbook.runner import chapters

    for chapter in chapters(NOTEBOOKS):
        params, results = _quick_params(chapter, {})
        _prefetch[chapter] = (pool.submit(_execute, chapter, params), results)
    pool.shutdown(wait=False)


# Slow session fixtures whose work runs in child processes (grading) are
# computed by a thread started when collection ends, like the quick runs.
_background_jobs: dict = {}     # name -> (fixture names that wait for it, job)
_background: dict = {}          # name -> Future
_background_lock = threading.Lock()


def background(name: str, fixtures: tuple[str, ...]):
    """Register ``job()`` (a test module's decorator) to start when collection ends.

    It starts if a selected test uses one of ``fixtures``, which read its result
    with ``background_result(name)``; those tests run last. Meant for work done
    in child processes, so the thread leaves the interpreter to the tests.
    """
    def register(job):
        _background_jobs[name] = (tuple(fixtures), job)
        return job
    return register


def background_result(name: str):
    """The registered job's return value (started now if it was not); its error re-raised.

    A job may wait for another one this way.
    """
    _start_background(name)
    return _background[name].result()


def _start_background(name: str) -> None:
    """Start the job ``name`` in a thread of its own, unless it has started."""
    from concurrent.futures import ThreadPoolExecutor

    with _background_lock:
        if name in _background:
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"background-{name}",
                                  initializer=_lower_priority)
        _background[name] = pool.submit(_background_jobs[name][1])
        pool.shutdown(wait=False)


def _uses(item, fixtures) -> bool:
    return not set(getattr(item, "fixturenames", ())).isdisjoint(fixtures)


def _uses_background(item) -> bool:
    return any(_uses(item, fixtures) for fixtures, _ in _background_jobs.values())


def _needs_quick_runs(item) -> bool:
    return item.get_closest_marker("book") is not None or "quick_results" in getattr(
        item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    """Tests that wait for background work (quick runs, grading) go last, in their order.

    That work starts when collection ends (``pytest_collection_finish``) and goes
    on in worker processes while the other tests run here, so the two cores stay busy.
    """
    items.sort(key=lambda item: _uses_background(item) or _needs_quick_runs(item))  # stable


def pytest_collection_finish(session):
    if any(_needs_quick_runs(item) for item in session.items):
        _start_all_quick_runs()
    for name, (fixtures, _) in _background_jobs.items():
        if any(_uses(item, fixtures) for item in session.items):
            _start_background(name)


def run_quick(chapter: str, **extra) -> dict:
    """Run ``notebooks/{chapter}.ipynb`` in quick mode once per session.

    Returns the notebook's results JSON as a dict; the executed notebook is
    ``_build/quick/notebooks/{chapter}.ipynb``. Runs without ``extra``
    parameters are the chapter tests' and the book's: all six were started when
    collection ended (see ``_start_all_quick_runs``).
    """
    key = (chapter, tuple(sorted(extra.items())))
    if key not in _runs:
        if extra:
            params, results = _quick_params(chapter, extra)
            error = _execute(chapter, params)
        else:
            _start_all_quick_runs()
            future, results = _prefetch[chapter]
            error = future.result()
        if error is not None:
            pytest.fail(f"{chapter} (quick mode, SEED={TEST_SEED}) failed:\n{error}",
                        pytrace=False)
        _runs[key] = json.loads(results.read_text())
    return _runs[key]


def check_results(results: dict, keys) -> None:
    """The results contract: ``keys`` present, quick mode, and every claim held.

    The thresholds live once, in the notebook's claim check (which stops the
    run when a claim fails); here we only check that it recorded its claims.
    """
    missing = set(keys) - set(results)
    assert not missing, f"results lack the contract keys {sorted(missing)}"
    assert results["quick"] is True
    claims = results["claims"]
    assert claims and all(set(c) == {"name", "held", "value", "statement"} for c in claims)
    assert [c["name"] for c in claims if not c["held"]] == []


@pytest.fixture(scope="session")
def quick_results():
    """The ``run_quick`` function (results are cached per session)."""
    return run_quick
