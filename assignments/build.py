"""Build the student versions and autograder bundles of every assignment.

Usage (from the repository root; ``make assignments`` runs the first line)::

    python assignments/build.py                    # all assignments -> assignments/dist/
    python assignments/build.py 02_hessian_scaling # only some of them
    python assignments/build.py --out /tmp/dist --no-run-tests
    python assignments/build.py --source ~/private/assignments  # masters kept elsewhere

For each solution ("master") notebook ``assignments/NN_name/NN_name.ipynb``
this runs ``otter assign`` (otter-grader 7) and leaves, under
``DIST/NN_name/``:

* ``student/NN_name.ipynb`` — the version to hand out: solutions replaced by
  ``...``, written answers replaced by a placeholder, hidden tests removed;
  the public tests live in its metadata (``grader.check("question")``);
* ``autograder/NN_name-autograder.zip`` — the grading bundle (all tests,
  public and hidden, with their points) for ``assignments/grade.py`` /
  ``otter run``;
* ``autograder/NN_name.ipynb`` — the solution notebook with the otter cells;
* ``autograder/questions.json`` — the autograded questions and their points
  (``grade.py`` reads these, so grading never needs the masters).

The solution masters are public wherever this repository is public. To keep
them private, keep them in a folder of their own (same ``NN_name/NN_name.ipynb``
layout, e.g. a private repository) and pass ``--source DIR``.

The bundle is made to build a Docker/Gradescope grading image too
(``otter grade``): its ``environment.yml`` asks for Python 3.11 and installs
exactly ``requirements.lock`` (shipped in the zip, hash-checked by pip), and
its ``setup.sh`` then installs the ``ntkbook`` package it carries
(``ntkbook_pkg/``).

Unless ``--no-run-tests`` is given, ``otter assign`` also executes the
solution notebook and grades it against the bundle, and fails unless it gets
full marks. Nothing is downloaded: the ``environment.yml``/``setup.sh`` in the
zip are only used by Docker/Gradescope graders, never by ``grade.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DIST = HERE / "dist"
LOCK = ROOT / "requirements.lock"
BUNDLE_PACKAGE = "ntkbook_pkg"          # the ntkbook package inside the zip
AUTOGRADER_DIR = "/autograder/source"   # where Gradescope/otter grade unpack the zip


def assignment_names(directory: Path | None = None) -> list[str]:
    """Names ``NN_name`` of the assignments (folders holding ``NN_name.ipynb``), sorted."""
    directory = HERE if directory is None else directory
    return sorted(p.parent.name for p in directory.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")
                  if p.stem == p.parent.name)


def questions(name: str, *, manual: bool = False, source: Path | None = None) -> list[str]:
    """Question names of assignment ``name`` in notebook order.

    Read from the ``# BEGIN QUESTION`` raw cells of the master notebook;
    autograded questions only unless ``manual`` is True.
    """
    import nbformat
    import yaml

    nb = nbformat.read((source or HERE) / name / f"{name}.ipynb", as_version=4)
    names = []
    for cell in nb.cells:
        lines = cell.source.strip().splitlines()
        if cell.cell_type == "raw" and lines and lines[0].strip() == "# BEGIN QUESTION":
            config = yaml.safe_load("\n".join(lines[1:])) or {}
            if manual or not config.get("manual", False):
                names.append(config["name"])
    return names


def question_points(name: str, *, source: Path | None = None) -> dict:
    """``{question: points}`` of the autograded questions of ``name`` (None where not given)."""
    import nbformat
    import yaml

    nb = nbformat.read((source or HERE) / name / f"{name}.ipynb", as_version=4)
    points = {}
    for cell in nb.cells:
        lines = cell.source.strip().splitlines()
        if cell.cell_type == "raw" and lines and lines[0].strip() == "# BEGIN QUESTION":
            config = yaml.safe_load("\n".join(lines[1:])) or {}
            if not config.get("manual", False):
                value = config.get("points")
                points[config["name"]] = float(value) if isinstance(value, (int, float)) else None
    return points


def grading_env() -> dict:
    """Environment for otter and the notebook kernels it starts.

    ``ntkbook`` is importable from the repository root even when it is not
    installed in the interpreter; TensorFlow's C++ log noise and progress
    bars are silenced.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("NTKBOOK_NO_PROGRESS", "1")
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def bundle_questions(dist: Path, name: str) -> dict:
    """``{question: points or None}`` (notebook order) recorded next to the bundle by ``build_one``."""
    path = dist / name / "autograder" / "questions.json"
    return {q: p for q, p in json.loads(path.read_text())["points"]}


def built_assignments(dist: Path) -> list[str]:
    """Names of the assignments with a bundle under ``dist``, sorted."""
    return sorted(p.parent.parent.name for p in dist.glob("[0-9][0-9]_*/autograder/questions.json")
                  if autograder_zip(dist, p.parent.parent.name).is_file())


def bundle_environment() -> str:
    """``environment.yml`` of the bundle: Python 3.11 and exactly ``requirements.lock`` (hash-checked)."""
    return "\n".join([
        "# Written by assignments/build.py: the course environment for Docker/Gradescope grading",
        "# (`otter grade`); otter's setup.sh creates it, then installs the ntkbook package.",
        "name: otter-env", "channels:", "  - conda-forge", "dependencies:",
        "  - python=3.11", "  - pip", "  - pip:",
        f"      - -r {AUTOGRADER_DIR}/requirements.lock", ""])


# Appended to otter's setup.sh: the package is not in the lock (it is this repository).
SETUP_NTKBOOK = (f"\n# ntkbook, the course's helper package (added by assignments/build.py)\n"
                 f"mamba run -n otter-env pip install --no-deps {AUTOGRADER_DIR}/{BUNDLE_PACKAGE}\n")


def _finish_bundle(zip_path: Path, name: str, source: Path) -> None:
    """Make the bundle build the course environment in Docker/Gradescope, and record its questions.

    otter writes an ``environment.yml`` for Python 3.13 with otter alone; this
    one asks for Python 3.11 and ``requirements.lock`` (shipped in the zip),
    and ``setup.sh`` also installs the ``ntkbook`` package shipped as
    ``ntkbook_pkg/``.
    """
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(zip_path) as old, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "environment.yml":
                data = bundle_environment().encode()
            elif item.filename == "setup.sh":
                data = data.rstrip(b"\n") + b"\n" + SETUP_NTKBOOK.encode()
            new.writestr(item, data)
        new.write(LOCK, "requirements.lock")
        new.write(ROOT / "pyproject.toml", f"{BUNDLE_PACKAGE}/pyproject.toml")
        new.writestr(f"{BUNDLE_PACKAGE}/README.md", "The ntkbook helper package (course environment).\n")
        for module in sorted((ROOT / "ntkbook").glob("*.py")):
            new.write(module, f"{BUNDLE_PACKAGE}/ntkbook/{module.name}")
    tmp.replace(zip_path)
    points = question_points(name, source=source)
    (zip_path.parent / "questions.json").write_text(
        json.dumps({"assignment": name, "points": list(points.items())}, indent=1) + "\n")


def autograder_zip(dist: Path, name: str) -> Path:
    """Path of the (stable-named) autograder bundle of assignment ``name``."""
    return dist / name / "autograder" / f"{name}-autograder.zip"


def student_notebook(dist: Path, name: str) -> Path:
    """Path of the student version of assignment ``name``."""
    return dist / name / "student" / f"{name}.ipynb"


def solution_notebook(dist: Path, name: str) -> Path:
    """Path of the solution notebook (with otter's cells) of assignment ``name``."""
    return dist / name / "autograder" / f"{name}.ipynb"


def build_one(name: str, dist: Path, *, run_tests: bool = True, verbose: bool = False,
              source: Path | None = None) -> Path:
    """Run ``otter assign`` on ``SOURCE/name/name.ipynb`` into ``dist/name``.

    Returns the path of the autograder zip. Raises ``RuntimeError`` with
    otter's output when the build (or the solution's self-check) fails.
    """
    source = HERE if source is None else source
    master = source / name / f"{name}.ipynb"
    if not master.is_file():
        raise ValueError(f"name must be one of {assignment_names(source)}, got {name!r}")
    out = dist / name
    if out.exists():
        shutil.rmtree(out)  # otter time-stamps its zip names: never keep stale bundles
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs"]
    if not run_tests:
        cmd.append("--no-run-tests")
    cmd += [str(master), str(out)]
    proc = subprocess.run(cmd, cwd=str(master.parent), env=grading_env(),
                          capture_output=True, text=True)
    if verbose or proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"otter assign failed for {name} (exit {proc.returncode}); output above")
    zips = sorted((out / "autograder").glob(f"{name}-autograder_*.zip"))
    if len(zips) != 1 or not student_notebook(dist, name).is_file():
        raise RuntimeError(f"otter assign did not write the expected files under {out}")
    target = autograder_zip(dist, name)
    zips[0].rename(target)
    _finish_bundle(target, name, source)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Build student notebooks and autograder bundles with otter assign.")
    parser.add_argument("names", nargs="*",
                        help="assignments to build (default: all), e.g. 01_tangent_kernel")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIST,
                        help="output folder (default: assignments/dist)")
    parser.add_argument("--no-run-tests", action="store_true",
                        help="skip otter's check that each solution gets full marks (faster)")
    parser.add_argument("--source", type=Path, default=HERE,
                        help="folder of the solution masters NN_name/NN_name.ipynb "
                             "(default: assignments/, public with this repository)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show otter's output")
    args = parser.parse_args(argv)

    source = args.source.resolve()
    known = assignment_names(source)
    names = args.names or known
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        parser.error(f"unknown assignment(s) {unknown}; choose from {known} (in {source})")
    dist = args.out.resolve()
    for name in names:
        start = time.perf_counter()
        print(f"building {name} ...", flush=True)
        zip_path = build_one(name, dist, run_tests=not args.no_run_tests, verbose=args.verbose,
                             source=source)
        checked = "" if args.no_run_tests else ", solution graded to full marks"
        print(f"  student version: {student_notebook(dist, name)}\n"
              f"  autograder:      {zip_path}\n"
              f"  ({time.perf_counter() - start:.0f} s{checked})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
