"""Grade a folder of submitted notebooks, each in a sandbox, into a CSV of scores.

Usage (from the repository root; ``make grade SUBMISSIONS=dir`` runs it)::

    python assignments/grade.py SUBMISSIONS_DIR [--out scores.csv] [--dist assignments/dist]
                                [--jobs N] [--timeout S] [--memory-mb MB]

WARNING — grading runs the students' code. Every submitted notebook is
executed top to bottom and can do whatever Python can do. Each one therefore
runs in a bubblewrap sandbox (``sandbox.py``): no network, a read-only view
of the course environment, a throwaway folder with its own copy of the
autograder bundle, no access to this repository (solutions, hidden tests of
other assignments, ``dist/``) or to your files and environment variables,
limits on time, memory, processes and output, and every process killed when
its grading ends. The sandbox does NOT stop a notebook from tampering with
its own grading run (patching otter or numpy in the kernel, forging
results); that is detected, not prevented (``tamper.py``): such a row gets
total 0 and ``TAMPERED`` in the ``flag`` column, and code worth a look
(os, subprocess, otter, introspection, file writes, ...) gets ``review: ...``.
Check flagged rows by hand. Nothing here protects against kernel or
bubblewrap exploits: for high stakes, grade in Docker (``otter grade``,
assignments/README.md) on a machine that holds nothing else of value.

Every ``*.ipynb`` under ``SUBMISSIONS_DIR`` (sub-folders included, Jupyter
checkpoints skipped) is matched to its assignment — by the assignment name
otter stored in the notebook's metadata, else by a file name starting with
``NN_`` — and graded with ``otter run`` against a fresh copy of
``DIST/NN_name/autograder/NN_name-autograder.zip`` (build those first:
``make assignments``). Nothing is installed or downloaded.

Output:

* the CSV (default ``scores.csv``): one row per submission with columns
  ``submission, assignment, total, possible, percent, error, flag`` and one
  column per autograded question; written atomically after every finished
  submission, so an interrupted batch (Ctrl-C) leaves a valid CSV of what
  finished; written answers (manual questions) are not in it;
* ``<csv stem>_feedback/<submission>/``: otter's ``results.json`` (score and
  test output per question, for feedback to students), ``otter.log`` and the
  guard's report ``guard.log``.

A submission that cannot be graded (not a notebook, unknown assignment,
otter error, "Autograder Failed", timeout, results that do not match the
assignment) gets a row with total 0 and the reason in ``error``. Exit code:
0 all graded and unflagged, 1 some error or flag, 2 bad arguments or no
sandbox, 130 interrupted.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sandbox  # noqa: E402
import tamper  # noqa: E402
from build import (DEFAULT_DIST, ROOT, autograder_zip, built_assignments,  # noqa: E402
                   bundle_questions, student_notebook)

FIXED_COLUMNS = ["submission", "assignment", "total", "possible", "percent", "error", "flag"]
MAX_NOTEBOOK_BYTES = 20 << 20
MAX_RESULTS_BYTES = 8 << 20
MAX_GUARD_BYTES = 1 << 20


def _known_names() -> list[str]:
    """Assignment names from the masters (only to name the assignment in an error row)."""
    from build import assignment_names
    return assignment_names()


def find_submissions(directory: Path) -> list[Path]:
    """All notebooks under ``directory``, sorted, without Jupyter checkpoints."""
    return sorted(p for p in directory.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def read_notebook(notebook: Path) -> dict:
    """The notebook's JSON as a dict; ``ValueError`` naming the file if it is not a notebook."""
    try:
        if notebook.is_symlink() or not notebook.is_file():
            raise ValueError("a symbolic link or special file, not graded (it could point anywhere)")
        if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{notebook.name} is not a readable notebook: {err}") from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{notebook.name} is not a readable notebook: no list of cells")
    return nb


def identify_assignment(notebook: Path, names: list[str], nb: dict | None = None) -> str:
    """Assignment name of a submitted notebook.

    The name otter wrote into the notebook metadata (``otter.assignment_name``)
    wins; otherwise the ``NN_`` prefix of the file name picks the assignment.
    Raises ``ValueError`` naming the file when neither works.
    """
    nb = read_notebook(notebook) if nb is None else nb
    meta = nb.get("metadata")
    otter_meta = meta.get("otter") if isinstance(meta, dict) else None
    name = otter_meta.get("assignment_name") if isinstance(otter_meta, dict) else None
    if isinstance(name, str) and name in names:
        return name
    matches = [n for n in names if notebook.name.startswith(n[:3])]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"cannot tell which assignment {notebook.name} belongs to "
                     f"(metadata name {str(name)[:80]!r}; known: {names})")


def parse_results(results_json: Path) -> dict:
    """``{question: (score, max_score)}`` from otter's ``results.json`` (untrusted input).

    Only the per-question entries carry scores (the "Public Tests" summary
    entry does not). ``RuntimeError`` if the file is not what otter writes or
    reports that the autograder failed.
    """
    if not results_json.is_file() or results_json.stat().st_size > MAX_RESULTS_BYTES:
        raise RuntimeError("otter wrote no usable results.json")
    try:
        data = json.loads(results_json.read_text(encoding="utf-8", errors="replace"))
        tests = data["tests"]
        scores = {}
        for test in tests:
            if test.get("name") == "Autograder Failed":
                raise RuntimeError("Autograder Failed: " + str(test.get("output", ""))[:300])
            if "score" in test and "max_score" in test:
                score, possible = float(test["score"]), float(test["max_score"])
                if not (math.isfinite(score) and math.isfinite(possible)):
                    raise ValueError("non-finite score")
                scores[str(test["name"])] = (score, possible)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise RuntimeError(f"otter's results.json is malformed ({type(err).__name__}: {err})") from err
    return scores


class GuardReader(threading.Thread):
    """Reads the kernel guard's named pipe into memory (capped) while the sandbox runs."""

    def __init__(self, fifo: Path):
        super().__init__(daemon=True)
        self.fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.data = bytearray()
        self.done = threading.Event()

    def run(self):
        import select
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            chunk = os.read(self.fd, 65536) if ready else b""
            if chunk:
                if len(self.data) < MAX_GUARD_BYTES:
                    self.data += chunk[: MAX_GUARD_BYTES - len(self.data)]
            elif self.done.is_set():
                break
            else:
                time.sleep(0.05)
        os.close(self.fd)

    def text(self) -> str:
        self.done.set()
        self.join(timeout=5)
        return self.data.decode("utf-8", "replace")


def grade_one(notebook: Path, name: str, zip_path: Path, feedback: Path, *,
              limits: sandbox.Limits) -> tuple[dict, str]:
    """Grade one notebook with ``otter run`` in the sandbox.

    Returns ``(otter's {question: (score, max)}, the guard's report text)``.
    otter's console output goes to ``feedback/otter.log``, its
    ``results.json`` and the guard's report to ``feedback/``.
    """
    feedback.mkdir(parents=True, exist_ok=True)
    for stale in ("results.json", "guard.log"):
        (feedback / stale).unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ntkbook-grade-"))
    try:
        work = tmp / "work"
        for sub in ("out", "home"):
            (work / sub).mkdir(parents=True)
        shutil.copyfile(notebook, work / f"{name}.ipynb")  # the name its init cell expects
        shutil.copyfile(zip_path, work / "autograder.zip")  # a fresh copy: dist/ stays untouched
        fifo = tmp / "guard.fifo"
        os.mkfifo(fifo)
        os.chmod(fifo, 0o622)  # the sandbox user writes, only the grader reads
        reader = GuardReader(fifo)
        reader.start()
        argv = [f"{sandbox.VENV}/bin/python", "-m", "otter", "run", "--no-logo",
                "-a", f"{sandbox.WORK}/autograder.zip", "-o", f"{sandbox.WORK}/out",
                f"{sandbox.WORK}/{name}.ipynb"]
        result = sandbox.run_sandboxed(
            argv, workdir=work, log_path=feedback / "otter.log", venv=Path(sys.prefix),
            package_dir=ROOT / "ntkbook", limits=limits, fifo=fifo,
            env={"NTKBOOK_GUARD_FIFO": sandbox.GUARD_FIFO})
        guard_text = reader.text()
        (feedback / "guard.log").write_text(guard_text)
        results = work / "out" / "results.json"
        if results.is_file() and not results.is_symlink() and results.stat().st_size <= MAX_RESULTS_BYTES:
            shutil.copyfile(results, feedback / "results.json")
        if result.returncode is None:
            raise RuntimeError(f"grading took longer than {limits.timeout:g} s (killed)")
        if result.returncode != 0:
            raise RuntimeError(f"otter run failed (exit {result.returncode}); see {feedback / 'otter.log'}")
        return parse_results(feedback / "results.json"), guard_text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def question_columns(rows: list[dict], dist: Path) -> list[str]:
    """Question columns: the graded assignments in order, their questions in notebook order.

    Question names are unique within an assignment; a name shared by two
    assignments (e.g. a generic one) shares a column.
    """
    columns = []
    for name in sorted({row["assignment"] for row in rows if row["assignment"]}):
        graded = [q for row in rows if row["assignment"] == name for q in row["questions"]]
        try:
            known = list(bundle_questions(dist, name))
        except (OSError, ValueError, KeyError, TypeError):
            known = []
        for question in known + graded:
            if question not in columns:
                columns.append(question)
    return columns


def write_csv(rows: list[dict], path: Path, dist: Path) -> None:
    """Write the score rows (dicts) to ``path`` atomically (temporary file, then rename)."""
    columns = FIXED_COLUMNS + question_columns(rows, dist)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                out = {k: row[k] for k in FIXED_COLUMNS}
                out.update({q: f"{s:g}" for q, (s, _) in row["questions"].items()})
                writer.writerow(out)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_expected(name: str, questions_scores: dict, dist: Path) -> None:
    """``RuntimeError`` unless the graded questions and their points are the assignment's."""
    expected = bundle_questions(dist, name)
    if set(questions_scores) != set(expected):
        raise RuntimeError(f"results for questions {sorted(questions_scores)}, expected {sorted(expected)}")
    wrong = {q: m for q, (_, m) in questions_scores.items() if expected[q] is not None and m != expected[q]}
    if wrong:
        raise RuntimeError(f"results with wrong maximum points {wrong}")
    if any(not 0 <= s <= m for s, m in questions_scores.values()):
        raise RuntimeError("results with scores outside [0, max]")
    if sum(m for _, m in questions_scores.values()) <= 0:
        raise RuntimeError("zero possible points: the tests did not run")


def grade_submission(notebook: Path, submissions: Path, feedback_root: Path, *,
                     dist: Path, limits: sandbox.Limits, handouts: dict | None = None) -> dict:
    """Score row (a dict) of one submitted notebook; never raises for a bad submission."""
    rel = notebook.relative_to(submissions)
    row = {"submission": str(rel), "assignment": "", "total": 0, "possible": "",
           "percent": "", "error": "", "flag": "", "questions": {}}
    flags, tampering, ran = [], [], False
    try:
        nb = read_notebook(notebook)
        name = identify_assignment(notebook, built_assignments(dist) or _known_names(), nb)
        row["assignment"] = name
        zip_path = autograder_zip(dist, name)
        if not zip_path.is_file():
            raise RuntimeError(f"no autograder bundle {zip_path}: run `make assignments` first")
        handout = (handouts or {}).get(name)
        if handout is None and student_notebook(dist, name).is_file():
            handout = json.loads(student_notebook(dist, name).read_text())
        flags += [f"review: {f}" for f in tamper.scan_notebook(nb, handout)]
        ran = True
        scores, guard_text = grade_one(notebook, name, zip_path, feedback_root / rel.with_suffix(""),
                                       limits=limits)
        tampering, runtime = tamper.guard_verdict(tamper.read_guard_report(guard_text), scores)
        flags += [f"review: {f}" for f in runtime]
        _check_expected(name, scores, dist)
        if tampering:
            scores = {q: (0.0, m) for q, (_, m) in scores.items()}
        total = sum(s for s, _ in scores.values())
        possible = sum(m for _, m in scores.values())
        row.update(questions=scores, total=f"{total:g}", possible=f"{possible:g}",
                   percent=f"{100 * total / possible:.1f}")
    except (ValueError, RuntimeError, OSError) as err:
        row["error"] = str(err)[:500]
    except Exception as err:  # a bug or a very odd file: still one row, never a lost batch
        row["error"] = f"grader error {type(err).__name__}: {str(err)[:400]}"
    if row["error"] and ran and not tampering:  # what the guard saw still counts when grading failed
        guard_log = feedback_root / rel.with_suffix("") / "guard.log"
        if guard_log.is_file():
            report = tamper.read_guard_report(guard_log.read_text(errors="replace"))
            tampering = list(dict.fromkeys(report.tampering))
            flags += [f"review: runtime: {f}" for f in dict.fromkeys(report.flags)]
    if tampering:
        flags.insert(0, "TAMPERED: " + "; ".join(tampering)[:400])
    row["flag"] = " | ".join(flags)[:1000]
    return row


def grade_folder(submissions: Path, out: Path, *, dist: Path = DEFAULT_DIST,
                 timeout: float = 600.0, jobs: int = 1, verbose: bool = True,
                 limits: sandbox.Limits | None = None) -> list[dict]:
    """Grade every notebook under ``submissions``, each in a sandbox, into the CSV ``out``.

    ``jobs`` submissions are graded at the same time. The CSV is rewritten
    (atomically) after every finished submission; on ``KeyboardInterrupt``
    the running sandboxes are killed, the CSV keeps the finished rows, and
    the interrupt propagates. Returns the rows, in submission order (dicts
    with the fixed columns plus ``questions``: ``{question: (score, max)}``).
    ``SandboxError`` if bubblewrap is missing or cannot run here.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    limits = limits or sandbox.Limits(timeout=float(timeout))
    notebooks = find_submissions(submissions)
    if not notebooks:
        raise SystemExit(f"no .ipynb files under {submissions}")
    sandbox.check_sandbox()
    feedback_root = out.parent / f"{out.stem}_feedback"
    handouts = {}
    for name in built_assignments(dist):
        path = student_notebook(dist, name)
        if path.is_file():
            handouts[name] = json.loads(path.read_text())
    done: dict[int, dict] = {}

    def run(notebook):
        start = time.perf_counter()
        row = grade_submission(notebook, submissions, feedback_root, dist=dist, limits=limits,
                               handouts=handouts)
        if verbose:
            status = row["error"] or f"{row['total']} / {row['possible']}"
            flag = f" [{row['flag'][:120]}]" if row["flag"] else ""
            print(f"{row['submission']}: {status}{flag} ({time.perf_counter() - start:.0f} s)", flush=True)
        return row

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(run, nb): i for i, nb in enumerate(notebooks)}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            write_csv([done[i] for i in sorted(done)], out, dist)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        sandbox.kill_all()
        write_csv([done[i] for i in sorted(done)], out, dist)
        if verbose:
            print(f"interrupted: {len(done)} of {len(notebooks)} submissions graded, in {out}",
                  file=sys.stderr)
        raise
    pool.shutdown()
    if verbose:
        print(f"scores: {out}\nfeedback: {feedback_root}")
    return [done[i] for i in sorted(done)]


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value
    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Grade submitted notebooks with otter run, each in a bubblewrap sandbox, into a CSV.",
        epilog=next(p for p in __doc__.split("\n\n") if p.startswith("WARNING")), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"),
                        help="CSV to write (default: scores.csv)")
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST,
                        help="folder written by build.py (default: assignments/dist)")
    parser.add_argument("--timeout", type=_positive(float), default=600.0,
                        help="wall seconds allowed per submission (default: 600)")
    parser.add_argument("-j", "--jobs", type=_positive(int), default=1,
                        help="submissions graded in parallel (default: 1; each uses ~1 core)")
    parser.add_argument("--memory-mb", type=_positive(int), default=sandbox.Limits.memory_mb,
                        help=f"address space per process in MB (default: {sandbox.Limits.memory_mb})")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS_DIR {args.submissions} is not a folder")
    limits = sandbox.Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    try:
        rows = grade_folder(args.submissions.resolve(), args.out.resolve(), dist=args.dist.resolve(),
                            timeout=args.timeout, jobs=args.jobs, limits=limits)
    except sandbox.SandboxError as err:
        print(f"grade.py: cannot grade safely: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1 if any(r["error"] or r["flag"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
