"""Seed sweeps: run a chapter in quick mode over many seeds and count its claims.

``python -m ntkbook seeds 2 --seeds 100-119 --jobs 2`` executes chapter 2 once
per seed (each run in a process of its own calling
``ntkbook.runner.run_chapter``, so a crash or a hang stays in its run, and a
run whose claim fails still leaves its results JSON), reads the ``"claims"`` list that every chapter
writes to its results JSON (see :func:`ntkbook.notebook.claim`), and prints,
per claim, how often it held and the spread of the measured value, plus the
wall time per run. A claim that holds for the paper's reason holds for every
seed; one that fails for some seeds is either under-powered or not the claim.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["parse_seeds", "run_seed", "summarize", "format_table", "sweep"]


def parse_seeds(text: str) -> list[int]:
    """``"100-119"``, ``"1,5,9"`` or ``"0-3,10"`` -> a sorted list of distinct seeds."""
    seeds = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"--seeds: {part!r} is not N or N-M (non-negative ints)")
        lo_i, hi_i = int(lo), int(hi) if sep else int(lo)
        if hi_i < lo_i:
            raise ValueError(f"--seeds: empty range {part!r}")
        seeds.update(range(lo_i, hi_i + 1))
    return sorted(seeds)


def run_seed(chapter: str, seed: int, out_dir: Path, extra: list[tuple[str, str]],
             *, timeout: float) -> dict:
    """Run ``chapter`` in quick mode with ``SEED = seed``; return its record.

    The record has ``seed``, ``seconds``, ``ok`` (the notebook ran to the end),
    ``claims`` (the results' claim list, or ``None`` when the run stopped
    before writing results) and ``error`` (the last lines of stderr).
    """
    out = out_dir / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    if results.exists():
        results.unlink()                      # never read a previous run's claims
    params = {"QUICK": True, "SEED": seed, "RESULTS_PATH": str(results)}
    params.update((name, _literal(value)) for name, value in extra)
    # run_chapter directly (not the `run` command, which discards a failed run's
    # results): a chapter whose claim fails still writes its claims first.
    cmd = [sys.executable, "-c", "import sys; from ntkbook.sweep import _execute; "
           "sys.exit(_execute(sys.argv[1], sys.argv[2], sys.argv[3]))",
           chapter, str(out / f"{chapter}.ipynb"), json.dumps(params)]
    env = dict(os.environ, NTKBOOK_NO_PROGRESS="1")
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        ok, err = proc.returncode == 0, proc.stderr
    except subprocess.TimeoutExpired:
        ok, err = False, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    claims = json.loads(results.read_text()).get("claims") if results.exists() else None
    error = "" if ok else "\n".join(err.strip().splitlines()[-3:])
    return {"seed": seed, "seconds": seconds, "ok": ok, "claims": claims, "error": error}


def _literal(text: str):
    from .runner import parse_value

    return parse_value(text)


def _execute(chapter: str, output: str, params_json: str) -> int:
    """Worker of :func:`run_seed`: execute one chapter; 0 on success, 1 with the error on stderr."""
    from .runner import resolve_chapter, run_chapter

    try:
        run_chapter(resolve_chapter(chapter), json.loads(params_json), Path(output))
    except Exception as err:  # noqa: BLE001 -- reported to the sweep through stderr
        print(" ".join(str(getattr(err, "evalue", "") or err).split())[:500], file=sys.stderr)
        return 1
    return 0


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _spread(values):
    """``(min, median, max)`` as text; for lists of numbers, per component joined by ``; ``,
    and for dicts of numbers per key, as ``key value`` joined by ``; ``."""
    nums = [v for v in values if _is_number(v)]
    if nums:
        return (f"{min(nums):.4g}", f"{statistics.median(nums):.4g}", f"{max(nums):.4g}")
    dicts = [v for v in values if isinstance(v, dict) and v and all(map(_is_number, v.values()))]
    if dicts and len({tuple(sorted(d)) for d in dicts}) == 1:
        cols = {k: _spread([d[k] for d in dicts]) for k in sorted(dicts[0])}
        return tuple("; ".join(f"{k} {c[i]}" for k, c in cols.items()) for i in range(3))
    rows = [v for v in values if isinstance(v, list) and v and all(map(_is_number, v))]
    if not rows or len({len(r) for r in rows}) != 1:
        return "", "", ""
    cols = [_spread([r[i] for r in rows]) for i in range(len(rows[0]))]
    return tuple("; ".join(c[k] for c in cols) for k in range(3))


def summarize(records: list[dict]) -> list[dict]:
    """Per claim (in the order the chapter states them): held count and value spread."""
    rows: dict[str, dict] = {}
    for rec in records:
        for c in rec["claims"] or []:
            row = rows.setdefault(c["name"], {"name": c["name"], "statement": c["statement"],
                                              "held": 0, "runs": 0, "values": [],
                                              "failed_seeds": []})
            row["runs"] += 1
            row["held"] += bool(c["held"])
            row["values"].append(c["value"])
            if not c["held"]:
                row["failed_seeds"].append(rec["seed"])
    return list(rows.values())


def format_table(chapter: str, records: list[dict]) -> str:
    """A markdown table of :func:`summarize` plus run times and failed runs."""
    n = len(records)
    lines = [f"### {chapter}: {n} seeds ({records[0]['seed']}..{records[-1]['seed']})", "",
             "| claim | held | min | median | max | statement |", "|---|---|---|---|---|---|"]
    for row in summarize(records):
        lo, med, hi = _spread(row["values"])
        held = f"{row['held']}/{n}"
        if row["failed_seeds"]:
            held += f" (fails: {', '.join(map(str, row['failed_seeds']))})"
        lines.append(f"| {row['name']} | {held} | {lo} | {med} | {hi} | {row['statement']} |")
    times = [r["seconds"] for r in records]
    lines += ["", f"runs passed: {sum(r['ok'] for r in records)}/{n}; wall time per run "
              f"min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
              f"max {max(times):.1f} s"]
    for r in records:
        if not r["ok"] and r["claims"] is None:
            lines.append(f"- seed {r['seed']} stopped before its claim check: {r['error']}")
    return "\n".join(lines)


def sweep(chapter: str, seeds: list[int], out_dir: Path, *, jobs: int = 1,
          extra: list[tuple[str, str]] = (), timeout: float = 600.0,
          echo=print) -> list[dict]:
    """Run every seed (``jobs`` at a time) and return the records sorted by seed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_seed, chapter, s, out_dir, list(extra), timeout=timeout)
                   for s in seeds]
        for fut in futures:
            rec = fut.result()
            records.append(rec)
            failed = [c["name"] for c in rec["claims"] or [] if not c["held"]]
            status = "ok" if rec["ok"] else ("claims failed: " + ", ".join(failed) if failed
                                              else "error")
            echo(f"  seed {rec['seed']}: {status} ({rec['seconds']:.1f} s)")
    records.sort(key=lambda r: r["seed"])
    (out_dir / "sweep.json").write_text(json.dumps(records, indent=1))
    return records
