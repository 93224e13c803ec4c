"""Command line: ``python -m ntkbook run CHAPTER [-p NAME VALUE ...]``.

``python -m ntkbook seeds CHAPTER [CHAPTER ...] --seeds 100-119 --jobs 2`` runs
quick mode over many seeds and tabulates how often each claim held.

Runs one chapter notebook with papermill and prints where the executed
notebook and its results JSON went. Values are Python literals
(``-p QUICK False -p WIDTHS "[64, 128]"``); anything else is a string.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def chapters(directory: Path = NOTEBOOKS) -> list[str]:
    """Names (no suffix) of the chapter notebooks, sorted."""
    return sorted(p.stem for p in directory.glob("[0-9][0-9]_*.ipynb"))


def resolve_chapter(name: str, directory: Path = NOTEBOOKS) -> Path:
    """Path of chapter ``name``: a full stem (``02_hessian_scaling``) or its number (``2``)."""
    names = chapters(directory)
    stem = Path(name).stem
    matches = [n for n in names if n == stem or (stem.isdigit() and n.startswith(f"{int(stem):02d}_"))]
    if len(matches) != 1:
        raise SystemExit(f"unknown chapter {name!r}; choose one of: {', '.join(names)}")
    return directory / f"{matches[0]}.ipynb"


def parse_value(text: str):
    """A Python literal when ``text`` is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_chapter(notebook: Path, parameters: dict, output: Path, *, log_output=False):
    """Execute ``notebook`` with papermill, writing it to ``output``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import papermill as pm

    output.parent.mkdir(parents=True, exist_ok=True)
    return pm.execute_notebook(str(notebook), str(output), parameters=parameters,
                               cwd=str(notebook.parent), kernel_name="python3",
                               log_output=log_output, progress_bar=False)


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

    if args.command == "list":
        print("\n".join(chapters()))
        return 0
    if args.command == "seeds":
        return _seeds(args, parser)
    notebook = resolve_chapter(args.chapter)
    params = {name: parse_value(value) for name, value in args.parameter}
    out_dir = Path(args.output_dir).resolve()
    params.setdefault("RESULTS_PATH", str(out_dir / f"{notebook.stem}.json"))
    output = out_dir / f"{notebook.stem}.ipynb"
    start = time.perf_counter()
    run_chapter(notebook, params, output, log_output=args.log_output)
    print(f"ran {notebook.name} with {params} in {time.perf_counter() - start:.1f} s")
    print(f"executed notebook: {output}")
    print(f"results: {params['RESULTS_PATH']}")
    return 0


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
    sys.exit(main())
