"""Notebook plumbing: parameter validation, per-point keys, results JSON.

Every chapter validates its papermill parameters right after the parameters
cell with one call, ``globals().update(resolve(globals(), {NAME: Knob, ...}))``:
each knob declares its full and quick defaults and its bounds, and a bad value
stops the run with an error that names the parameter and what is allowed.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import jax
import numpy as np

__all__ = ["check_bool", "check_int", "check_float", "check_choice", "check_int_list",
           "check_float_list", "check_path", "Knob", "Int", "Float", "Bool", "Choice",
           "IntList", "FloatList", "resolve", "over_seeds", "parallel_map", "cpu_threads", "point_keys", "write_results", "progress",
           "to_jsonable", "glue", "claim", "assert_claims"]


def _fail(name, allowed, value):
    raise ValueError(f"parameter {name} must be {allowed}, got {value!r}")


def check_bool(name: str, value) -> bool:
    """``value`` must be a bool (``True``/``False``)."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(name, "True or False", value)
    return bool(value)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` must be an int in ``[minimum, maximum]``."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        _fail(name, f"an int in [{minimum}, {maximum}]", value)
    return int(value)


def check_float(name: str, value, *, minimum: float | None = None,
                maximum: float | None = None) -> float:
    """``value`` must be a real number in ``[minimum, maximum]``."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        _fail(name, f"a finite number in [{minimum}, {maximum}]", value)
    return float(value)


def check_choice(name: str, value, choices):
    """``value`` must be one of ``choices``."""
    if value not in choices:
        _fail(name, f"one of {list(choices)}", value)
    return value


def _check_list(name, value, *, is_item, kind, minimum, maximum, min_length, max_length,
                increasing):
    """The shared list check of ``check_int_list`` and ``check_float_list``."""
    ok = isinstance(value, (list, tuple)) and len(value) >= min_length
    ok = ok and (max_length is None or len(value) <= max_length)
    ok = ok and all(is_item(v) and (minimum is None or v >= minimum)
                    and (maximum is None or v <= maximum) for v in value)
    ok = ok and (not increasing or all(a < b for a, b in zip(value[:-1], value[1:])))
    if not ok:
        order = " in increasing order" if increasing else ""
        count = f"{min_length}..{max_length}" if max_length is not None else f"at least {min_length}"
        _fail(name, f"a list of {count} {kind} in [{minimum}, {maximum}]{order}", value)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and bool(np.isfinite(v)))


def check_int_list(name: str, value, *, minimum: int | None = None,
                   maximum: int | None = None, min_length: int = 1,
                   max_length: int | None = None, increasing: bool = False) -> list[int]:
    """``value`` must be a list of ``min_length..max_length`` ints in ``[minimum, maximum]``."""
    _check_list(name, value, is_item=_is_int, kind="ints", minimum=minimum, maximum=maximum,
                min_length=min_length, max_length=max_length, increasing=increasing)
    return [int(v) for v in value]


def check_float_list(name: str, value, *, minimum: float | None = None,
                     maximum: float | None = None, min_length: int = 1,
                     max_length: int | None = None, increasing: bool = False) -> list[float]:
    """``value`` must be a list of ``min_length..max_length`` reals in ``[minimum, maximum]``."""
    _check_list(name, value, is_item=_is_real, kind="numbers", minimum=minimum,
                maximum=maximum, min_length=min_length, max_length=max_length,
                increasing=increasing)
    return [float(v) for v in value]


def check_path(name: str, value) -> str | None:
    """``value`` must be None or a non-empty path string."""
    if value is not None and (not isinstance(value, str) or not value):
        _fail(name, "None or a non-empty path string", value)
    return value


def over_seeds(one_seed, key, num_seeds: int, *, threads: int | None = None):
    """``one_seed(k)`` for the ``num_seeds`` keys ``jax.random.split(key, num_seeds)``.

    ``one_seed`` is compiled once (``jax.jit(...).lower(k).compile()``), so an
    experiment compiles once per shape, whatever the number of seeds; the
    seeds then run on ``threads`` cores at once, one compiled execution per
    seed (XLA runs most of these programs on one core; seeds are independent).
    Each seed's numbers are the same whatever ``threads`` is.

    Args:
      one_seed: ``one_seed(key) -> pytree of arrays``, traceable.
      key: PRNG key.
      num_seeds: S >= 1.
      threads: seeds run at once (None: ``cpu_threads()``).

    Returns:
      The pytree of ``one_seed`` with a leading axis S, as numpy arrays.
    """
    keys = jax.random.split(key, num_seeds)
    run = jax.jit(one_seed).lower(keys[0]).compile()
    outs = _thread_map(lambda k: jax.tree.map(np.asarray, run(k)), list(keys), threads)
    return jax.tree.map(lambda *xs: np.stack(xs), *outs)


def _thread_map(fn, items: list, threads: int | None, *, order=None, done=None) -> list:
    """``[fn(item) for item in items]`` on ``threads`` threads (None: ``cpu_threads()``).

    ``order``: the item indices in the order to start them (default: in order);
    ``done()`` is called as each item finishes. One thread: a plain loop, in order.
    """
    threads = min(len(items), threads or cpu_threads())
    if threads <= 1:
        results = []
        for item in items:
            results.append(fn(item))
            if done:
                done()
        return results
    with ThreadPoolExecutor(threads, thread_name_prefix="ntkbook") as pool:
        futures = {i: pool.submit(fn, items[i]) for i in (order or range(len(items)))}
        for _ in as_completed(futures.values()):
            if done:
                done()
        return [futures[i].result() for i in range(len(items))]


def cpu_threads() -> int:
    """Seeds ``over_seeds`` runs at once: ``$NTKBOOK_THREADS``, else the usable cores."""
    value = os.environ.get("NTKBOOK_THREADS")
    if value:
        return check_int("NTKBOOK_THREADS", int(value) if value.isdigit() else value, minimum=1)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def point_keys(key, num_points: int):
    """``(num_points, 2)`` keys ``fold_in(key, i)``: adding points keeps earlier draws."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(np.arange(num_points))


def to_jsonable(obj):
    """Convert numpy/jax scalars and arrays inside dicts/lists to plain Python."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


def write_results(path: str | None, results: dict) -> None:
    """Write ``results`` as JSON to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(to_jsonable(results), indent=2, sort_keys=True))


def progress(iterable=None, **kwargs):
    """``tqdm`` progress bar, silent when ``NTKBOOK_NO_PROGRESS`` is set (book builds)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=bool(os.environ.get("NTKBOOK_NO_PROGRESS")), **kwargs)


def parallel_map(fn, items, *, desc: str | None = None, threads: int | None = None,
                 cost=None) -> list:
    """``[fn(item) for item in items]``, ``threads`` items at a time, with a progress bar.

    For the independent settings of an experiment (its widths, say): XLA
    compiles and runs most of our programs on one core, so two settings at once
    use both cores of a laptop. Each result is the same as in a plain loop.

    Args:
      fn: ``fn(item) -> result``; it may call ``over_seeds``.
      items: the settings, in order.
      desc: progress-bar label.
      threads: items at once (None: ``cpu_threads()``).
      cost: optional ``cost(item) -> number``: costlier items start first, so
        that the largest width does not start last and run alone.

    Returns:
      The results, in the order of ``items``.
    """
    items = list(items)
    order = sorted(range(len(items)), key=lambda i: -cost(items[i])) if cost else None
    with progress(total=len(items), desc=desc) as bar:
        return _thread_map(fn, items, threads, order=order, done=bar.update)


def glue(name: str, value, display: bool = False):
    """``myst_nb.glue`` for numbers: numpy scalars become plain Python numbers.

    numpy 2 prints ``np.float64(0.5)``, which myst-nb's ``{glue:text}`key:.2f```
    cannot format; ``.item()`` turns numpy scalars and 0-d arrays into floats
    and ints first. Other values (figures, strings) pass through unchanged; a
    matplotlib figure glued with ``display=False`` is closed, so it appears
    once, where a ``{glue:figure}`` directive puts it with its caption.
    """
    from myst_nb import glue as myst_glue

    if isinstance(value, (np.generic, np.ndarray)) or hasattr(value, "__jax_array__") or (
            type(value).__module__.startswith("jax") and getattr(value, "ndim", None) == 0):
        value = np.asarray(value).item()
    out = myst_glue(name, value, display=display)
    if not display and type(value).__name__ == "Figure" and "matplotlib" in type(value).__module__:
        import matplotlib.pyplot as plt

        plt.close(value)      # shown once, where ``{glue:figure}`` puts it, not also here
    return out


def claim(name: str, held, value, statement: str) -> dict:
    """One assertion of a chapter's claim check, as a JSON-ready record.

    ``held`` is the outcome of the test, ``value`` the measured number (or
    numbers) it was decided on, ``statement`` the claim in words with its
    tolerance. Chapters collect these in a list, write them to the results
    JSON under ``"claims"`` (so ``python -m ntkbook seeds`` can count, over
    many seeds, how often each held and how the values spread), then call
    :func:`assert_claims`.
    """
    return {"name": str(name), "held": bool(held), "value": to_jsonable(value),
            "statement": str(statement)}


def assert_claims(claims: list[dict]) -> None:
    """Raise ``AssertionError`` naming every claim that did not hold (all of them, not the first)."""
    failed = [c for c in claims if not c["held"]]
    if failed:
        lines = [f"{c['name']}: {c['statement']} (measured {c['value']!r})" for c in failed]
        raise AssertionError(f"{len(failed)} of {len(claims)} claims did not hold:\n"
                             + "\n".join(lines))


# --- one-call parameter resolution -------------------------------------------------------

class Knob:
    """A chapter knob: its full and quick defaults and how a value is checked.

    ``full`` is the default of the book's run, ``quick`` that of ``QUICK=True``
    (the same as ``full`` when not given). Subclasses name their ``checker``, one of the ``check_*`` functions.
    """

    def __init__(self, full, *, quick=None, **bounds):
        self.full = full
        self.quick = full if quick is None else quick
        self.bounds = bounds

    def default(self, quick: bool):
        """The default for this mode (lists are copied, so callers may change them)."""
        value = self.quick if quick else self.full
        return list(value) if isinstance(value, (list, tuple)) else value

    def check(self, name: str, value):
        """The checked value, or ``ValueError("parameter NAME must be ...")``."""
        return type(self).checker(name, value, **self.bounds)


class Int(Knob):
    """An int in ``[minimum, maximum]`` (see :func:`check_int`)."""

    checker = staticmethod(check_int)


class Float(Knob):
    """A finite real number in ``[minimum, maximum]`` (see :func:`check_float`)."""

    checker = staticmethod(check_float)


class Bool(Knob):
    """``True`` or ``False``."""

    checker = staticmethod(check_bool)


class Choice(Knob):
    """One of ``choices`` (see :func:`check_choice`)."""

    checker = staticmethod(check_choice)

    def __init__(self, full, *, choices, quick=None):
        super().__init__(full, quick=quick, choices=list(choices))


class IntList(Knob):
    """A list of ints (see :func:`check_int_list` for the bounds)."""

    checker = staticmethod(check_int_list)


class FloatList(Knob):
    """A list of finite reals (see :func:`check_float_list` for the bounds)."""

    checker = staticmethod(check_float_list)


STANDARD = ("QUICK", "SEED", "RESULTS_PATH")


def resolve(namespace: dict, knobs: dict[str, Knob]) -> dict:
    """Validate a chapter's papermill parameters and fill in their defaults, in one call.

    ``namespace`` is the notebook's ``globals()`` after the parameters cell;
    ``knobs`` maps each chapter knob to its :class:`Knob`. ``QUICK``, ``SEED``
    and ``RESULTS_PATH`` are always checked. A knob that is ``None`` takes
    its quick or full default, then every value is checked, so a bad value
    (given or default) raises ``ValueError("parameter NAME must be ...")``.
    Use it as ``globals().update(nk.notebook.resolve(globals(), {...}))``.

    Returns:
      ``{name: resolved value}`` for the three standard parameters and every knob.
    """
    missing = [n for n in (*STANDARD, *knobs) if n not in namespace]
    if missing:
        raise NameError(f"parameters cell does not define {missing}")
    quick = check_bool("QUICK", namespace["QUICK"])
    out = {"QUICK": quick,
           "SEED": check_int("SEED", namespace["SEED"], minimum=0, maximum=2**32 - 1),
           "RESULTS_PATH": check_path("RESULTS_PATH", namespace["RESULTS_PATH"])}
    for name, knob in knobs.items():
        value = namespace[name]
        out[name] = knob.check(name, knob.default(quick) if value is None else value)
    return out
