"""Command line: ``python -m ntkbook run CHAPTER [-p NAME VALUE ...]``.

``python -m ntkbook list`` lists the chapters; ``python -m ntkbook params
CHAPTER`` lists a chapter's parameters with their defaults and what they do.
``python -m ntkbook seeds CHAPTER [CHAPTER ...] --seeds 100-119 --jobs 2`` runs
quick mode over many seeds and tabulates how often each claim held.

``run`` executes one chapter notebook with papermill, showing which section is
running, and prints where the executed notebook and its results JSON went.
Values are Python literals (``-p QUICK False -p WIDTHS "[64, 128]"``); anything
else is a string. Parameter names are checked against the notebook's
parameters cell before anything runs, and so are SEED (an int in [0, 2**32))
and RESULTS_PATH (relative to the current directory; must be writable).
Each run writes ``CHAPTER-DATE-TIME-ID.ipynb`` and ``.json`` (under
``_build/runs/`` unless ``-o`` says otherwise): first under a temporary name,
renamed when the run is over, so an interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .runner import (NOTEBOOKS, ROOT, UsageError, chapters, check_parameters, failure_summary,
                     notebook_parameters, parse_value, resolve_chapter, resolve_results_path,
                     run_chapter, run_name, section_reporter)


def _run(args) -> int:
    notebook = resolve_chapter(args.chapter)
    known = notebook_parameters(notebook)
    params = {name: parse_value(value) for name, value in args.parameter}
    check_parameters(params, known, notebook.stem)
    cwd = Path.cwd()
    out_dir = (cwd / args.output_dir).resolve()
    name = run_name(notebook)
    output = out_dir / f"{name}.ipynb"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".{name}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--output-dir: cannot write to {out_dir} ({err.strerror or err})") from None
    results = resolve_results_path(params.get("RESULTS_PATH", str(out_dir / f"{name}.json")), cwd)
    # Written under temporary names, renamed only when the run is over.
    partial_nb = out_dir / f".{name}.partial.ipynb"
    partial_results = None if results is None else str(
        Path(results).parent / f".{Path(results).name}.{name[-4:]}.partial")
    params["RESULTS_PATH"] = partial_results
    shown = {k: v for k, v in params.items() if k != "RESULTS_PATH"}
    print(f"running {notebook.name} with {shown or 'its defaults'}", flush=True)
    start = time.perf_counter()
    try:
        run_chapter(notebook, params, partial_nb, log_output=args.log_output,
                    on_cell_start=section_reporter(notebook, lambda m: print(m, flush=True)))
    except KeyboardInterrupt:
        return _interrupted(notebook, partial_nb, partial_results)
    except Exception as err:  # noqa: BLE001 - papermill's errors and the kernel's
        if getattr(err, "ename", None) == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
            return _interrupted(notebook, partial_nb, partial_results)
        _remove(partial_results)
        failed = out_dir / f"{name}.failed.ipynb"
        if partial_nb.exists():
            partial_nb.replace(failed)
        print(f"error: {failure_summary(err, known)}", file=sys.stderr)
        if failed.exists():
            print(f"executed notebook (with the full traceback): {failed}", file=sys.stderr)
        return 1
    partial_nb.replace(output)
    if partial_results is not None and Path(partial_results).exists():
        Path(partial_results).replace(results)
    print(f"ran {notebook.name} in {time.perf_counter() - start:.1f} s")
    print(f"executed notebook: {output}")
    print(f"results: {results if results and Path(results).exists() else '(none written)'}")
    return 0


def _interrupted(notebook, *partial) -> int:
    _remove(*partial)
    print(f"\ninterrupted: {notebook.name} did not finish; nothing was written", file=sys.stderr)
    return 130


def _remove(*paths) -> None:
    for path in paths:
        if path is not None:
            Path(path).unlink(missing_ok=True)


def _params(args) -> int:
    notebook = resolve_chapter(args.chapter)
    known = notebook_parameters(notebook)
    print(f"{notebook.stem}: python -m ntkbook run {notebook.stem[:2].lstrip('0')} -p NAME VALUE")
    width = max(len(f"{k} = {d}") for k, (d, _) in known.items())
    for name, (default, comment) in known.items():
        print(f"  {f'{name} = {default}':<{width}}  {comment}".rstrip())
    return 0


def _list() -> int:
    for name in chapters():
        cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
        title = next((line.lstrip("#").strip() for c in cells if c["cell_type"] == "markdown"
                      for line in "".join(c["source"]).splitlines() if line.startswith("# ")), "")
        print(f"{name:<26} {title}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ntkbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one chapter notebook with papermill")
    run.add_argument("chapter", help="e.g. 02_hessian_scaling or 2")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="notebook parameter (repeatable)")
    run.add_argument("-o", "--output-dir", default=str(ROOT / "_build" / "runs"),
                     help="where the executed notebook and results go (default: _build/runs)")
    run.add_argument("--log-output", action="store_true", help="stream cell output")
    sub.add_parser("list", help="list the chapters")
    params = sub.add_parser("params", help="list a chapter's parameters, defaults and comments")
    params.add_argument("chapter", help="e.g. 02_hessian_scaling or 2")
    seeds = sub.add_parser("seeds", help="run quick mode over many seeds; tabulate the claims")
    seeds.add_argument("chapter", nargs="+", help="chapters (names or numbers), or 'all'")
    seeds.add_argument("--seeds", default="100-119", help="e.g. 100-119 or 0-3,10 (default 100-119)")
    seeds.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    seeds.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="extra notebook parameter (repeatable)")
    seeds.add_argument("-o", "--output-dir", default=str(ROOT / "_build" / "seeds"),
                       help="where runs and tables go (default: _build/seeds)")
    seeds.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            return _list()
        if args.command == "params":
            return _params(args)
        if args.command == "seeds":
            return _seeds(args, parser)
        return _run(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _seeds(args, parser) -> int:
    from . import sweep

    try:
        seed_list = sweep.parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))
    if args.jobs < 1 or args.timeout <= 0:
        parser.error("--jobs must be >= 1 and --timeout > 0")
    names = chapters() if args.chapter == ["all"] else [
        resolve_chapter(c).stem for c in args.chapter]
    extra = {name: parse_value(value) for name, value in args.parameter}
    for name in ("QUICK", "SEED", "RESULTS_PATH"):
        if name in extra:
            parser.error(f"-p {name}: set by the sweep itself")
    for name in names:
        check_parameters(extra, notebook_parameters(NOTEBOOKS / f"{name}.ipynb"), name)
    all_held = True
    for name in names:
        print(f"{name}: seeds {args.seeds}, {args.jobs} at a time", flush=True)
        out = Path(args.output_dir).resolve() / name
        records = sweep.sweep(name, seed_list, out, jobs=args.jobs, extra=args.parameter,
                              timeout=args.timeout, echo=lambda m: print(m, flush=True))
        table = sweep.format_table(name, records)
        (out / "table.md").write_text(table + "\n")
        print(table + "\n", flush=True)
        all_held = all_held and all(r["ok"] for r in records)
    return 0 if all_held else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `python -m ntkbook params 6 | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
