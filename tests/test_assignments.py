"""Graded assignments (assignments/): otter assign builds, otter run grades.

One session-wide build (``otter assign`` into a tmp folder, without otter's
own solution run — grading the solutions below is the same check) and one
call of ``assignments/grade.py`` on a folder holding, for every assignment,
the solution notebook and the unmodified student version. Then:

* every solution notebook grades to full marks;
* every unmodified student version grades to zero on every code question;
* no solution text (solution code, written answers, hidden tests) is in a
  student version;
* grade.py (each notebook in the bubblewrap sandbox) writes one CSV row per
  submission with per-question and total scores and no flag for honest
  notebooks, and reports submissions it cannot grade;
* the bundles are built from a copy of the masters elsewhere (``--source``)
  and carry the Docker/Gradescope environment: Python 3.11, exactly
  ``requirements.lock``, the ``ntkbook`` package;
* no student-facing page (the book's pages, chapter notebooks, built HTML)
  holds solution text or hidden tests;
* the sample submission of the instructors' page gets the promised partial
  credit.

Grading executes notebooks (~10-30 s each on 2 idle cores), hence the
``notebook`` marker (``make test-fast`` skips these). Hostile submissions:
``test_grading_hostile.py``.
"""
import atexit
import csv
import json
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import background, background_result

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))

import build  # noqa: E402
import grade  # noqa: E402
from test_grading import ensure_bubblewrap  # noqa: E402

NAMES = build.assignment_names()
SAMPLES = sorted((ASSIGNMENTS / "samples").glob("*.ipynb"))


# Built and graded in threads started when collection ends (conftest.background),
# so the other tests run while otter and the sandboxed notebooks use the cores.
@background("assignments_dist", fixtures=("dist", "graded"))
def _build():
    """Student versions and autograder zips of every assignment, built from a copy of
    the masters in a folder of their own (``build.py --source``): the dist folder."""
    base = Path(tempfile.mkdtemp(prefix="ntkbook-assignments-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    source, dist = base / "private_masters", base / "dist"
    for name in NAMES:
        shutil.copytree(ASSIGNMENTS / name, source / name)
    for name in NAMES:
        build.build_one(name, dist, run_tests=False, source=source)
    return dist


@background("assignments_graded", fixtures=("graded",))
def _grade():
    """grade.py on solutions/NN.ipynb + students/NN.ipynb for every assignment (and the
    samples), once the build is done: ``(rows by submission path, csv path)``."""
    dist = background_result("assignments_dist")
    ensure_bubblewrap()
    base = Path(tempfile.mkdtemp(prefix="ntkbook-grading-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    subs = base / "submissions"
    for name in NAMES:
        (subs / "solutions").mkdir(parents=True, exist_ok=True)
        (subs / "students").mkdir(parents=True, exist_ok=True)
        shutil.copy(build.solution_notebook(dist, name), subs / "solutions" / f"{name}.ipynb")
        shutil.copy(build.student_notebook(dist, name), subs / "students" / f"{name}.ipynb")
    (subs / "samples").mkdir()
    for sample in SAMPLES:
        shutil.copy(sample, subs / "samples" / sample.name)
    out = base / "scores.csv"
    rows = grade.grade_folder(subs, out, dist=dist, jobs=2, verbose=False)
    return {row["submission"]: row for row in rows}, out


@pytest.fixture(scope="session")
def dist():
    """Student versions and autograder zips of every assignment (``build.py --source``)."""
    return background_result("assignments_dist")


@pytest.fixture(scope="session")
def graded():
    """grade.py run once on solutions/NN.ipynb + students/NN.ipynb for every assignment.

    Returns ``(rows by submission path, csv path)``.
    """
    return background_result("assignments_graded")


def test_there_are_assignments():
    """One assignment per chapter, numbered like it."""
    from ntkbook.runner import chapters

    assert sorted(name[:2] for name in NAMES) == sorted(name[:2] for name in chapters())
    assert len(NAMES) >= 6


@pytest.mark.parametrize("name", NAMES)
def test_master_notebook_is_clean(name):
    """Committed without outputs, python3 kernel, at least two autograded questions."""
    nb = nbformat.read(ASSIGNMENTS / name / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: clear the outputs"
    assert len(build.questions(name)) >= 2
    assert len(build.questions(name, manual=True)) > len(build.questions(name))


def _solution_lines(nb) -> list[str]:
    """Solution text of a master notebook, line by line.

    Lines between ``# BEGIN SOLUTION`` / ``# END SOLUTION`` inside code cells,
    the right-hand side of ``# SOLUTION`` lines, markdown cells inside a raw
    solution block (written answers), and hidden test cells.
    """
    lines, in_block, in_tests = [], False, False
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "raw":
            head = src.strip().splitlines()[0] if src.strip() else ""
            in_block = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(head, in_block)
            in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(head, in_tests)
            continue
        if cell.cell_type == "markdown" and in_block:
            lines += src.splitlines()
        elif cell.cell_type == "code" and in_tests and re.search(r"hidden:\s*true", src):
            lines += [line for line in src.splitlines() if "TEST CONFIG" not in line]
        elif cell.cell_type == "code":
            inside = False
            for line in src.splitlines():
                if line.strip() == "# END SOLUTION":
                    inside = False
                elif inside:
                    lines.append(line)
                elif line.strip() == "# BEGIN SOLUTION":
                    inside = True
                elif line.rstrip().endswith("# SOLUTION"):
                    lines.append(line.split("=", 1)[-1].replace("# SOLUTION", ""))
    return [line.strip() for line in lines if len(line.strip()) >= 12]


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_student_version_has_no_solution_text(dist, name):
    master = nbformat.read(ASSIGNMENTS / name / f"{name}.ipynb", as_version=4)
    student_text = build.student_notebook(dist, name).read_text()
    student_sources = "\n".join(
        c.source for c in nbformat.read(build.student_notebook(dist, name), as_version=4).cells)
    solution = _solution_lines(master)
    assert len(solution) >= 10, "the solution parser found too little: is the format still right?"
    # Lines that also occur outside the solutions (e.g. shared boilerplate) are not secrets.
    public = {line.strip() for line in student_sources.splitlines()}
    leaked = [line for line in solution
              if line not in public and (line in student_text or json.dumps(line)[1:-1] in student_text)]
    in_sources = [line for line in solution if line in public]
    assert not leaked and not in_sources, f"solution text in the student version: {leaked + in_sources}"


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_bundle_has_hidden_and_public_tests(dist, name):
    student = nbformat.read(build.student_notebook(dist, name), as_version=4)
    public = student.metadata["otter"]["tests"]
    assert student.metadata["otter"]["assignment_name"] == name
    assert set(public) == set(build.questions(name)), "every code question has public tests"
    for test in public.values():
        assert all(not case["hidden"] for suite in test["suites"] for case in suite["cases"])
    with zipfile.ZipFile(build.autograder_zip(dist, name)) as bundle:
        files = {Path(f).stem: bundle.read(f).decode() for f in bundle.namelist()
                 if f.startswith("tests/")}
    assert set(files) == set(build.questions(name))
    assert any("'hidden': True" in text or '"hidden": True' in text for text in files.values())


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_solution_gets_full_marks(graded, name):
    rows, _ = graded
    row = rows[f"solutions/{name}.ipynb"]
    assert row["error"] == "", row["error"]
    assert row["flag"] == "", f"an honest solution was flagged: {row['flag']}"
    assert row["assignment"] == name
    assert set(row["questions"]) == set(build.questions(name))
    assert float(row["possible"]) > 0
    assert float(row["total"]) == float(row["possible"]), row["questions"]


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_unmodified_student_version_gets_zero(graded, name):
    rows, _ = graded
    row = rows[f"students/{name}.ipynb"]
    assert row["error"] == "" and row["flag"] == "", (row["error"], row["flag"])
    assert row["possible"] == rows[f"solutions/{name}.ipynb"]["possible"]
    assert {q: s for q, (s, _) in row["questions"].items()} == {q: 0.0 for q in build.questions(name)}
    assert float(row["total"]) == 0.0


@pytest.mark.notebook
def test_scores_csv(graded):
    rows, path = graded
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 * len(NAMES) + len(SAMPLES) == len(rows)
    header = list(table[0])
    assert header[:7] == grade.FIXED_COLUMNS
    for name in NAMES:
        assert set(build.questions(name)) <= set(header)
    for line in table:
        row = rows[line["submission"]]
        assert line["assignment"] == row["assignment"]
        assert float(line["total"]) == sum(float(line[q]) for q in build.questions(row["assignment"]))
        assert float(line["total"]) == float(row["total"])


@pytest.mark.notebook
def test_sample_submission_gets_partial_credit(graded):
    """The instructors' page promises: question 1 right, the rest wrong -> 3 / 8."""
    rows, _ = graded
    row = rows["samples/04_zonal_spectrum_sample.ipynb"]
    assert row["error"] == "" and row["flag"] == "", (row["error"], row["flag"])
    assert {q: s for q, (s, _) in row["questions"].items()} == {
        "funk_hecke": 3.0, "gaussian_kernel": 0.0, "decay_exponents": 0.0}
    assert (row["total"], row["possible"]) == ("3", "8")


def test_grade_reports_ungradable_submissions(tmp_path):
    """Unknown assignments and broken files get an error row and exit code 1 (no otter run)."""
    ensure_bubblewrap()
    subs = tmp_path / "subs"
    subs.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nbformat.write(nb, subs / "99_mystery.ipynb")
    (subs / "broken.ipynb").write_text("{not json")
    out = tmp_path / "scores.csv"
    assert grade.main([str(subs), "--out", str(out), "--dist", str(tmp_path / "no_dist")]) == 1
    with open(out, newline="") as f:
        table = {row["submission"]: row for row in csv.DictReader(f)}
    assert set(table) == {"99_mystery.ipynb", "broken.ipynb"}
    assert "cannot tell which assignment" in table["99_mystery.ipynb"]["error"]
    assert "not a readable notebook" in table["broken.ipynb"]["error"]


def test_grade_needs_the_bundles(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), subs / f"{NAMES[0]}_alice.ipynb")
    rows = grade.grade_folder(subs, tmp_path / "s.csv", dist=tmp_path / "empty", verbose=False)
    assert "make assignments" in rows[0]["error"]


def test_build_rejects_unknown_names():
    with pytest.raises(SystemExit):
        build.main(["99_nothing"])


@pytest.mark.notebook
@pytest.mark.parametrize("name", NAMES)
def test_bundle_builds_the_course_environment(dist, name):
    """Docker/Gradescope: Python 3.11, exactly the lock, and the ntkbook package in the zip."""
    with zipfile.ZipFile(build.autograder_zip(dist, name)) as bundle:
        env = bundle.read("environment.yml").decode()
        setup = bundle.read("setup.sh").decode()
        lock = bundle.read("requirements.lock")
        files = set(bundle.namelist())
    lines = [line.strip() for line in env.splitlines()]
    assert "- python=3.11" in lines
    assert lines[lines.index("- pip:") + 1:] == [f"- -r {build.AUTOGRADER_DIR}/requirements.lock"]
    assert lock == (ROOT / "requirements.lock").read_bytes()
    assert b"\notter-grader==" in lock and b"\njax==" in lock
    assert f"pip install --no-deps {build.AUTOGRADER_DIR}/{build.BUNDLE_PACKAGE}" in setup
    assert setup.index("mamba env create") < setup.index(build.BUNDLE_PACKAGE)
    package = {f"{build.BUNDLE_PACKAGE}/ntkbook/{p.name}" for p in (ROOT / "ntkbook").glob("*.py")}
    assert package | {f"{build.BUNDLE_PACKAGE}/pyproject.toml"} <= files
    assert json.loads((build.autograder_zip(dist, name).parent / "questions.json").read_text())[
        "points"] == [[q, p] for q, p in build.question_points(name).items()]


def _student_facing_texts() -> dict:
    """Text of every page students see: the book's pages and chapters, the README, built HTML."""
    paths = [*sorted((ROOT / "book").glob("*.md")), *sorted((ROOT / "notebooks").glob("*.ipynb")),
             ROOT / "README.md", *sorted((ROOT / "_build" / "html").rglob("*.html"))]
    return {str(p.relative_to(ROOT)): p.read_text(errors="replace") for p in paths}


def test_no_solution_text_on_student_facing_pages():
    """Neither the book (sources, or the built HTML when present) nor the students' page
    quotes a solution line or a hidden test of any assignment."""
    texts = _student_facing_texts()
    assert "book/students.md" in texts
    for name in NAMES:
        master = nbformat.read(ASSIGNMENTS / name / f"{name}.ipynb", as_version=4)
        # (block headers such as "for s in range(NUM_SEEDS):" are not secrets)
        secrets = [line for line in _solution_lines(master) if len(line) >= 20 and not line.endswith(":")]
        leaks = [(page, line) for page, text in texts.items() for line in secrets
                 if line in text or json.dumps(line)[1:-1] in text]
        assert not leaks, f"{name}: solution text on a student-facing page: {leaks[:5]}"
