"""The grading sandbox and the grader's robustness, without running otter (a few seconds).

* ``sandbox.py``: code inside sees no network, no repository, no solution
  masters, no ``dist/``, none of the grader's environment variables; cannot
  write the course environment or the package; runs as nobody under the
  resource limits; is killed at the timeout; leaves no process behind.
* ``tamper.py``: the static scan flags what tampering needs and not what the
  solutions use; the guard's report is read only with its token.
* ``grade.py``: bad arguments are clear errors, a bad notebook is one error
  row, the CSV is written atomically and survives an interrupted batch.

The hostile submissions that run through otter are in ``test_grading_hostile.py``.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))

import build  # noqa: E402
import grade  # noqa: E402
import sandbox  # noqa: E402
import tamper  # noqa: E402


def ensure_bubblewrap():
    """Install bubblewrap like the Makefile does when missing (root + apt); skip only if impossible."""
    try:
        sandbox.check_sandbox()
        return
    except sandbox.SandboxError as err:
        reason = str(err)
    if shutil.which("bwrap") is None and shutil.which("apt-get"):
        sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
        if sudo is not None:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "bubblewrap"], env=env,
                           capture_output=True)
            try:
                sandbox.check_sandbox()
                return
            except sandbox.SandboxError as err:
                reason = str(err)
    pytest.skip(f"no grading sandbox on this machine: {reason}")


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    """``run(code, timeout=...) -> (Result, console text)``: Python code run in the grading sandbox."""
    ensure_bubblewrap()
    base = tmp_path_factory.mktemp("sandboxed")

    def run(code, *, limits=sandbox.Limits(timeout=60), env=None):
        work = Path(os.path.realpath(base)) / f"job{len(list(base.iterdir()))}"
        (work / "w").mkdir(parents=True)
        log = work / "log"
        result = sandbox.run_sandboxed([f"{sandbox.VENV}/bin/python", "-c", code], workdir=work / "w",
                                       log_path=log, venv=Path(sys.prefix), package_dir=ROOT / "ntkbook",
                                       limits=limits, env=env)
        return result, log.read_text(errors="replace")
    return run


PROBE = r"""
import json, os, resource, socket, sys
out = {"uid": os.getuid(), "env": dict(os.environ), "cwd": os.getcwd()}
def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
out["write"] = {p: can_write(p) for p in [
    "/opt/venv/pwned", "/opt/ntkbook/ntkbook/pwned.py", "/grading/ok.txt", "/tmp/ok.txt",
    "/usr/pwned", "/etc/pwned"]}
out["exists"] = {p: os.path.exists(p) for p in [
    REPO, REPO + "/assignments", REPO + "/assignments/dist", REPO + "/.git", "/root/.ssh", "/home"]}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    out["net"] = "connected"
except OSError as err:
    out["net"] = repr(err)
import importlib.util
out["ntkbook"] = importlib.util.find_spec("ntkbook").origin  # (without importing jax: fast)
out["ntkbook_dir"] = sorted(os.listdir(os.path.dirname(os.path.dirname(out["ntkbook"]))))
out["limits"] = {n: resource.getrlimit(getattr(resource, n))[0]
                 for n in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE")}
out["procs"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
print("PROBE", json.dumps(out))
""".replace("REPO", repr(str(ROOT)))


def test_sandbox_isolates_the_code(sandboxed, monkeypatch):
    monkeypatch.setenv("NTKBOOK_TEST_CANARY", "instructor-secret")
    result, text = sandboxed(PROBE)
    assert result.returncode == 0, text
    probe = json.loads(text.split("PROBE ", 1)[1])
    assert "NTKBOOK_TEST_CANARY" not in probe["env"] and "instructor-secret" not in text
    assert set(probe["env"]) - {"PWD"} <= set(sandbox._environment({})), "only what the grader sets"
    assert probe["write"] == {"/opt/venv/pwned": False, "/opt/ntkbook/ntkbook/pwned.py": False,
                              "/grading/ok.txt": True, "/tmp/ok.txt": True, "/usr/pwned": False,
                              "/etc/pwned": False}
    assert not any(probe["exists"].values()), probe["exists"]
    assert "connected" not in probe["net"]
    assert probe["ntkbook"] == "/opt/ntkbook/ntkbook/__init__.py"
    assert probe["ntkbook_dir"] == ["ntkbook"], "the package alone: no repository around it"
    assert not (ROOT / "ntkbook" / "pwned.py").exists()
    if os.geteuid() == 0:
        assert probe["uid"] == sandbox.NOBODY
    limits = sandbox.Limits()
    nproc = probe["limits"].pop("RLIMIT_NPROC")
    assert limits.max_procs <= nproc < limits.max_procs + 5000
    assert probe["limits"] == {"RLIMIT_AS": limits.memory_mb << 20, "RLIMIT_FSIZE": limits.max_file_mb << 20,
                               "RLIMIT_NOFILE": limits.max_open_files}
    assert len(probe["procs"]) <= 3, "own PID namespace: only the sandbox's processes are visible"


def _host_processes_with(token: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def test_sandbox_limits_and_cleanup(sandboxed):
    """Memory, file-size, output and process limits bite; a detached process dies with the
    sandbox; timeouts kill."""
    token = f"ntkbook-orphan-{os.getpid()}-{time.time_ns()}"
    code = f"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{token}"], start_new_session=True)
try:
    bytearray(3 << 30)
    print("MEMORY allocated")
except MemoryError:
    print("MEMORY refused")
try:
    open("/grading/big", "wb").write(b"0" * (3 << 20))
    print("FILE written")
except OSError as err:
    print("FILE refused", err)
print("x" * 200000)
"""
    limits = sandbox.Limits(timeout=60, memory_mb=2048, max_file_mb=1, max_output_kb=16)
    result, text = sandboxed(code, limits=limits)
    assert "MEMORY refused" in text and "FILE refused" in text, text[:2000]
    assert len(text) < 20000 and "output truncated" in text
    time.sleep(0.5)
    assert _host_processes_with(token) == [], "a detached process outlived its sandbox"

    # The children never fork and never exit (a shell running `sleep` forks, and exits
    # when that fork is refused, freeing a slot: then more than max_procs Popens succeed).
    fork_bomb = f"""
import subprocess, sys
started = 0
try:
    for _ in range(200):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{token}"])
        started += 1
except OSError as err:
    print("FORK refused after", started, err)
"""
    result, text = sandboxed(fork_bomb, limits=sandbox.Limits(timeout=60, max_procs=40))
    assert "FORK refused after" in text and int(text.split("after ")[1].split()[0]) <= 40, text
    time.sleep(0.5)
    assert _host_processes_with(token) == []

    start = time.perf_counter()
    result, _ = sandboxed(f"import time; time.sleep(300)  # {token}", limits=sandbox.Limits(timeout=2))
    assert result.returncode is None and time.perf_counter() - start < 20
    assert _host_processes_with(token) == []


def test_missing_bubblewrap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxError, match="apt-get install bubblewrap"):
        sandbox.bwrap_path()


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "must be > 0"), (["--jobs", "two"], "not a int"),
    (["--timeout", "-5"], "must be > 0"), (["--timeout", "nan"], "must be > 0"),
    (["--timeout", "inf"], "must be > 0")])
def test_bad_arguments_are_clear_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        grade.main([str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_grade_folder_rejects_bad_numbers(tmp_path):
    for kwargs in ({"jobs": 0}, {"jobs": True}, {"timeout": -5}, {"timeout": float("nan")}):
        with pytest.raises(ValueError):
            grade.grade_folder(tmp_path, tmp_path / "s.csv", **kwargs)


def test_malformed_notebooks_are_one_error_row_each(tmp_path):
    """No otter run needed: each is rejected before grading, and the batch goes on."""
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "list.ipynb").write_text("[1, 2, 3]")
    (subs / "broken.ipynb").write_text("{not json")
    (subs / "nocells.ipynb").write_text('{"cells": "no", "metadata": {}}')
    (subs / "binary.ipynb").write_bytes(b"\xff\xfe\x00garbage")
    (subs / "link.ipynb").symlink_to("/etc/hostname")
    nb = nbformat.v4.new_notebook(metadata={"otter": "a string, not a dict"})
    nbformat.write(nb, subs / "meta_string.ipynb")
    nbformat.write(nb, subs / "04_meta_string.ipynb")  # recognised by its name: needs the bundle
    nb = nbformat.v4.new_notebook(metadata={"otter": {"assignment_name": ["not", "a", "name"]}})
    nbformat.write(nb, subs / "meta_list.ipynb")
    rows = {r["submission"]: r for r in grade.grade_folder(subs, tmp_path / "s.csv", dist=tmp_path / "d",
                                                           verbose=False)}
    assert set(rows) == {"list.ipynb", "broken.ipynb", "nocells.ipynb", "binary.ipynb", "link.ipynb",
                         "meta_string.ipynb", "meta_list.ipynb", "04_meta_string.ipynb"}
    for name in ("list.ipynb", "broken.ipynb", "nocells.ipynb", "binary.ipynb", "link.ipynb"):
        assert "not a readable notebook" in rows[name]["error"], rows[name]
    for name in ("meta_string.ipynb", "meta_list.ipynb"):
        assert "cannot tell which assignment" in rows[name]["error"], rows[name]
    assert "make assignments" in rows["04_meta_string.ipynb"]["error"]
    with open(tmp_path / "s.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 8


def test_interrupted_batch_leaves_a_valid_csv(tmp_path, monkeypatch):
    """Rows are written as they finish; Ctrl-C keeps what finished and propagates."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(3):
        nbformat.write(nbformat.v4.new_notebook(), subs / f"s{i}.ipynb")
    monkeypatch.setattr(sandbox, "check_sandbox", lambda: None)

    def fake(notebook, submissions, feedback_root, **kwargs):
        if notebook.name == "s1.ipynb":
            raise KeyboardInterrupt
        return {"submission": notebook.name, "assignment": "", "total": "1", "possible": "2",
                "percent": "50.0", "error": "", "flag": "", "questions": {}}

    monkeypatch.setattr(grade, "grade_submission", fake)
    out = tmp_path / "scores.csv"
    with pytest.raises(KeyboardInterrupt):
        grade.grade_folder(subs, out, dist=tmp_path, jobs=1, verbose=False)
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["submission"] for r in table] == ["s0.ipynb"]
    assert not list(tmp_path.glob(".scores.csv.*")), "no temporary file left behind"


def test_results_json_is_checked(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"tests": [{"name": "Autograder Failed", "output": "boom"}]}))
    with pytest.raises(RuntimeError, match="Autograder Failed"):
        grade.parse_results(path)
    for bad in ("[]", '{"tests": 3}', '{"tests": [{"name": "q", "score": "x", "max_score": 1}]}',
                '{"tests": [{"name": "q", "score": NaN, "max_score": 1}]}'):
        path.write_text(bad)
        with pytest.raises(RuntimeError, match="malformed"):
            grade.parse_results(path)
    path.write_text(json.dumps({"tests": [{"name": "Public Tests"},
                                          {"name": "q", "score": 1, "max_score": 2}]}))
    assert grade.parse_results(path) == {"q": (1.0, 2.0)}


def test_expected_questions_and_points(tmp_path):
    """Zero possible points, missing questions or inflated maxima are errors, not scores."""
    (tmp_path / "04_x" / "autograder").mkdir(parents=True)
    (tmp_path / "04_x" / "autograder" / "questions.json").write_text(
        json.dumps({"points": [["a", 3.0], ["b", None]]}))
    grade._check_expected("04_x", {"a": (3.0, 3.0), "b": (1.0, 2.0)}, tmp_path)
    for bad in ({"a": (3.0, 3.0)}, {"a": (9.0, 9.0), "b": (0.0, 2.0)}, {"a": (0.0, 0.0), "b": (0.0, 0.0)},
                {"a": (4.0, 3.0), "b": (0.0, 2.0)}):
        with pytest.raises(RuntimeError):
            grade._check_expected("04_x", bad, tmp_path)


def test_static_scan():
    flagged = {
        "import otter.test_files.ok_test as t\nt.run_doctest = lambda *a: (True, '')": "mentions otter",
        "import sys\nsys.modules['numpy'].allclose = lambda *a, **k: True": "touches sys.modules / imports",
        "getattr(__import__('o' + 's'), 'system')('id')": "uses __import__",
        "open('/proc/self/environ').read()": "mentions /proc",
        "!cat /etc/passwd": "IPython magic or shell escape",
        "import ctypes": "uses ctypes",
        "class F:\n    def __eq__(self, other):\n        return True": "defines __eq__",
        "x = (1).__class__.__subclasses__()": "dunder attribute __class__",
        "import builtins\nbuiltins.abs = lambda x: 0": "uses builtins",
        "eval('1+1')": "calls eval",
    }
    for source, reason in flagged.items():
        assert reason in tamper.scan_source(source), (source, tamper.scan_source(source))
    assert tamper.scan_source("import numpy as np\nx = np.linspace(0, 1, 5)\nslope, _ = nk.fit_power_law(k, lam)") == set()


@pytest.mark.parametrize("name", build.assignment_names())
def test_solutions_pass_the_static_scan(name):
    """The scan flags nothing in the masters' own code (no false alarms on honest solutions)."""
    nb = json.loads((ASSIGNMENTS / name / f"{name}.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    sources = [s for s in sources if '"""' not in s or "TEST CONFIG" not in s]  # hidden-test cells
    assert tamper.scan_notebook({"cells": [{"cell_type": "code", "source": s} for s in sources
                                           if not s.lstrip().startswith(">>>")]}, None) == [], name


def test_guard_report_needs_its_token():
    text = "\n".join(["START abc pid=1", "VERIFY abc ", "FLAG abc open /proc/1/mem",
                      "FINAL xyz ", "SCORE xyz q 3.0 3.0", "SCORE abc q 1.0 3.0", "FINAL abc "])
    report = tamper.read_guard_report(text)
    assert report.started and report.final and report.verified == 1 and report.forged == 2
    assert report.scores == {"q": (1.0, 3.0)} and report.flags == ["open /proc/1/mem"]
    tampering, flags = tamper.guard_verdict(report, {"q": (3.0, 3.0)})
    assert any("differs" in t for t in tampering) and any("forged" in t for t in tampering)
    assert flags == ["runtime: open /proc/1/mem"]
    assert tamper.guard_verdict(tamper.read_guard_report(""), {})[0] == ["the kernel guard did not start"]
