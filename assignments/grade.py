"""Grade a folder of submitted notebooks locally into a CSV of scores.

Usage (from the repository root; ``make grade SUBMISSIONS=dir`` runs it)::

    python assignments/grade.py SUBMISSIONS_DIR [--out scores.csv] [--dist assignments/dist] [--jobs N]

Every ``*.ipynb`` under ``SUBMISSIONS_DIR`` (sub-folders included, Jupyter
checkpoints skipped) is matched to its assignment — by the assignment name
otter stored in the notebook's metadata, else by a file name starting with
``NN_`` — and graded with ``otter run`` against
``DIST/NN_name/autograder/NN_name-autograder.zip`` (build those first:
``make assignments``). Grading runs in this Python environment, without
Docker and without installing or downloading anything: the notebook is
executed top to bottom in a fresh kernel, then every public and hidden test
is run.

Output:

* the CSV (default ``scores.csv``): one row per submission with columns
  ``submission, assignment, total, possible, percent, error`` and one column
  per autograded question (empty for questions of other assignments);
  written answers (manual questions) are not in it — grade them by hand;
* ``<csv stem>_feedback/<submission>/``: otter's ``results.json`` (score and
  test output per question, for feedback to students) and ``otter.log``.

A submission that cannot be graded at all (not a notebook, unknown
assignment, otter error, timeout) gets a row with total 0 and the reason in
``error``; the exit code is 1 when that happened, else 0.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build import DEFAULT_DIST, assignment_names, autograder_zip, grading_env, questions  # noqa: E402

FIXED_COLUMNS = ["submission", "assignment", "total", "possible", "percent", "error"]


def find_submissions(directory: Path) -> list[Path]:
    """All notebooks under ``directory``, sorted, without Jupyter checkpoints."""
    return sorted(p for p in directory.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def identify_assignment(notebook: Path, names: list[str]) -> str:
    """Assignment name of a submitted notebook.

    The name otter wrote into the notebook metadata (``otter.assignment_name``)
    wins; otherwise the ``NN_`` prefix of the file name picks the assignment.
    Raises ``ValueError`` naming the file when neither works.
    """
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError) as err:
        raise ValueError(f"{notebook.name} is not a readable notebook: {err}") from err
    name = meta.get("otter", {}).get("assignment_name")
    if name in names:
        return name
    matches = [n for n in names if notebook.name.startswith(n[:3])]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"cannot tell which assignment {notebook.name} belongs to "
                     f"(metadata name {name!r}; known: {names})")


def parse_results(results_json: Path) -> dict:
    """``{question: (score, max_score)}`` from otter's ``results.json``.

    Only the per-question entries carry scores (the "Public Tests" summary
    entry does not).
    """
    data = json.loads(results_json.read_text())
    scores = {}
    for test in data.get("tests", []):
        if "score" in test and "max_score" in test:
            scores[test["name"]] = (float(test["score"]), float(test["max_score"]))
    return scores


def grade_one(notebook: Path, zip_path: Path, feedback: Path, *, timeout: float) -> dict:
    """Grade one notebook with ``otter run``; returns ``{question: (score, max)}``.

    otter's console output goes to ``feedback/otter.log`` and its
    ``results.json`` to ``feedback/results.json``.
    """
    feedback.mkdir(parents=True, exist_ok=True)
    results = feedback / "results.json"
    if results.exists():
        results.unlink()
    cmd = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path),
           "-o", str(feedback), str(notebook)]
    with open(feedback / "otter.log", "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=grading_env(),
                                  timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"grading took longer than {timeout:.0f} s") from err
    if proc.returncode != 0 or not results.exists():
        raise RuntimeError(f"otter run failed (exit {proc.returncode}); see {feedback / 'otter.log'}")
    return parse_results(results)


def question_columns(rows: list[dict]) -> list[str]:
    """Question columns: the graded assignments in order, their questions in notebook order.

    Question names are unique within an assignment; a name shared by two
    assignments (e.g. a generic one) shares a column.
    """
    columns = []
    for name in sorted({row["assignment"] for row in rows if row["assignment"]}):
        graded = [q for row in rows if row["assignment"] == name for q in row["questions"]]
        for question in questions(name) + graded:
            if question not in columns:
                columns.append(question)
    return columns


def write_csv(rows: list[dict], path: Path) -> None:
    """Write the score rows (dicts) to ``path`` with the fixed columns first."""
    columns = FIXED_COLUMNS + question_columns(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            out = {k: row[k] for k in FIXED_COLUMNS}
            out.update({q: f"{s:g}" for q, (s, _) in row["questions"].items()})
            writer.writerow(out)


def grade_submission(notebook: Path, submissions: Path, feedback_root: Path, *,
                     dist: Path, timeout: float) -> dict:
    """Score row (a dict) of one submitted notebook; never raises for a bad submission."""
    rel = notebook.relative_to(submissions)
    row = {"submission": str(rel), "assignment": "", "total": 0, "possible": "",
           "percent": "", "error": "", "questions": {}}
    try:
        name = identify_assignment(notebook, assignment_names())
        row["assignment"] = name
        zip_path = autograder_zip(dist, name)
        if not zip_path.is_file():
            raise RuntimeError(f"no autograder bundle {zip_path}: run `make assignments` first")
        questions = grade_one(notebook, zip_path, feedback_root / rel.with_suffix(""),
                              timeout=timeout)
        total = sum(s for s, _ in questions.values())
        possible = sum(m for _, m in questions.values())
        row.update(questions=questions, total=f"{total:g}", possible=f"{possible:g}",
                   percent=f"{100 * total / possible:.1f}" if possible else "")
    except (ValueError, RuntimeError) as err:
        row["error"] = str(err)
    return row


def grade_folder(submissions: Path, out: Path, *, dist: Path = DEFAULT_DIST,
                 timeout: float = 600.0, jobs: int = 1, verbose: bool = True) -> list[dict]:
    """Grade every notebook under ``submissions`` and write the CSV ``out``.

    ``jobs`` submissions are graded at the same time (each in its own
    ``otter run`` process). Returns the rows, in submission order (dicts with
    the fixed columns plus ``questions``: ``{question: (score, max)}``).
    """
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    notebooks = find_submissions(submissions)
    if not notebooks:
        raise SystemExit(f"no .ipynb files under {submissions}")
    feedback_root = out.parent / f"{out.stem}_feedback"

    def run(notebook):
        start = time.perf_counter()
        row = grade_submission(notebook, submissions, feedback_root, dist=dist, timeout=timeout)
        if verbose:
            status = row["error"] or f"{row['total']} / {row['possible']}"
            print(f"{row['submission']}: {status} ({time.perf_counter() - start:.0f} s)", flush=True)
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(run, notebooks))
    write_csv(rows, out)
    if verbose:
        print(f"scores: {out}\nfeedback: {feedback_root}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade submitted notebooks with otter run (no Docker) into a CSV.")
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"),
                        help="CSV to write (default: scores.csv)")
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST,
                        help="folder written by build.py (default: assignments/dist)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds allowed per submission (default: 600)")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="submissions graded in parallel (default: 1; each uses ~1 core)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS_DIR {args.submissions} is not a folder")
    rows = grade_folder(args.submissions.resolve(), args.out.resolve(), dist=args.dist.resolve(),
                        timeout=args.timeout, jobs=args.jobs)
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
