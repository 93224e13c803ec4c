"""Hostile submissions: each grades to zero or is flagged, and the batch completes with a full CSV.

One batch (``grade.py --jobs 2``, module-scoped fixture) of assignment 04's
student version with attacks added after its setup cell:

* ``patch_run_doctest`` — the two lines that scored 8/8 before: replace
  otter's ``run_doctest`` so every test passes;
* ``escape`` — find the repository through ``ntkbook.__file__``, copy the
  solution masters and ``dist/``, overwrite the autograder bundle (the real
  one under ``dist/`` and the sandbox's copy), write into ``ntkbook/``, run
  ``os.system`` to touch a file on the host, open a network connection, and
  leave a detached process that rewrites otter's ``results.json`` with full
  marks and lives on forever;
* ``shadow_np`` — a global ``np`` whose every function says True, and
  ``sys.modules['numpy'].allclose`` replaced;
* ``obfuscated`` — ``__import__`` / ``getattr`` strings, ``/proc`` and gc;
* ``kernel_exit`` — the kernel kills itself (otter then reports "Autograder Failed");
* ``list`` — a notebook whose JSON is a list.

Grading costs ~15-25 s per notebook (otter + kernel + jax import) — five
otter runs on two cores, about a minute on a quiet machine. (Notebooks that
otter never runs — a list, a string as ``metadata.otter`` — are in
``test_grading.py``.)
"""
import copy
import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
sys.path.insert(0, str(ASSIGNMENTS))

import build  # noqa: E402
import grade  # noqa: E402
from test_grading import _host_processes_with, ensure_bubblewrap  # noqa: E402

NAME = "04_zonal_spectrum"
TOKEN = f"ntkbook-hostile-{os.getpid()}-{time.time_ns()}"

ATTACKS = {
    "patch_run_doctest": """
import otter.test_files.ok_test as _ok
_ok.run_doctest = lambda name, text, env: (True, "")
""",
    "escape": r"""
import glob, json, os, subprocess, sys, socket
import ntkbook
root = os.path.dirname(os.path.dirname(ntkbook.__file__))
found = {"masters": glob.glob(root + "/assignments/*/*.ipynb") + glob.glob(REPO + "/assignments/*/*.ipynb"),
         "dist": glob.glob(root + "/assignments/dist/*/*/*") + glob.glob(DIST + "/*/*/*"),
         "env": sorted(os.environ)}
for target in (REAL_ZIP, "/grading/autograder.zip", os.path.join(os.path.dirname(ntkbook.__file__), "pwned.py")):
    try:
        with open(target, "wb") as f:
            f.write(b"poison")
    except OSError as err:
        found[target] = repr(err)
os.system("touch " + MARKER)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2)
except OSError:
    pass
forger = '''
import json, os, sys, time
while True:
    p = "/grading/out/results.json"
    if os.path.exists(p):
        try:
            d = json.load(open(p))
            for t in d["tests"]:
                if "max_score" in t:
                    t["score"] = t["max_score"]
            json.dump(d, open(p, "w"))
        except Exception:
            pass
    time.sleep(0.01)
'''
subprocess.Popen([sys.executable, "-c", forger, TOKEN], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps(found))
""",
    "shadow_np": """
class _Yes:
    def __getattr__(self, name):
        return lambda *args, **kwargs: True
np = _Yes()
import sys
sys.modules["numpy"].allclose = lambda *args, **kwargs: True
""",
    "obfuscated": """
_m = __import__("o" + "s")
getattr(_m, "sys" + "tem")("true")
_env = open("/proc/self/environ", "rb").read()
import gc
_everything = gc.get_objects()
""",
    "kernel_exit": """
import os
os._exit(3)
""",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The batch: ``(rows by submission, CSV rows, dist, bundle hash before, marker path)``."""
    ensure_bubblewrap()
    base = Path(os.path.realpath(tmp_path_factory.mktemp("hostile")))
    dist = base / "dist"
    build.build_one(NAME, dist, run_tests=False)
    zip_path = build.autograder_zip(dist, NAME)
    before = _sha(zip_path)
    marker = base / "host_marker"
    handout = json.loads(build.student_notebook(dist, NAME).read_text())
    setup = next(i for i, c in enumerate(handout["cells"])
                 if c["cell_type"] == "code" and "import ntkbook as nk" in "".join(c["source"]))
    subs = base / "submissions"
    subs.mkdir()
    values = {"REPO": repr(str(ROOT)), "DIST": repr(str(dist)), "REAL_ZIP": repr(str(zip_path)),
              "MARKER": repr(str(marker)), "TOKEN": repr(TOKEN)}
    for name, attack in ATTACKS.items():
        for key, value in values.items():
            attack = attack.replace(key, value)
        nb = copy.deepcopy(handout)
        nb["cells"].insert(setup + 1, {"cell_type": "code", "execution_count": None, "metadata": {},
                                       "outputs": [], "source": attack})
        (subs / f"{name}.ipynb").write_text(json.dumps(nb))
    (subs / "list.ipynb").write_text("[1, 2, 3]")
    out = base / "scores.csv"
    code = grade.main([str(subs), "--out", str(out), "--dist", str(dist), "--jobs", "2",
                       "--timeout", "300"])
    with open(out, newline="") as f:
        table = list(csv.DictReader(f))
    rows = {row["submission"]: row for row in table}
    return rows, code, dist, before, marker


def test_batch_completes_with_a_full_csv(hostile):
    rows, code, *_ = hostile
    assert set(rows) == {f"{n}.ipynb" for n in ATTACKS} | {"list.ipynb"}
    assert code == 1, "errors and flags make the exit code 1"


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_gets_zero_or_a_flag(hostile, name):
    rows, *_ = hostile
    row = rows[f"{name}.ipynb"]
    if row["error"]:
        assert float(row["total"]) == 0
    else:
        assert row["flag"], f"{name} got an unflagged {row['total']}"
        assert float(row["total"]) == 0, f"{name} scored {row['total']}"


@pytest.mark.parametrize("name, expected", [
    ("patch_run_doctest", "TAMPERED: otter.test_files.ok_test.run_doctest replaced"),
    ("shadow_np", "global 'np' is not the module the tests expect"),
    ("shadow_np", "numpy.allclose replaced"),
    ("obfuscated", "runtime: os.system"),
    ("obfuscated", "runtime: gc.get_objects"),
    ("obfuscated", "runtime: open /proc/self/environ"),
    ("obfuscated", "review: uses __import__"),
    ("escape", "runtime: subprocess.Popen"),
    ("escape", "review: uses os"),
])
def test_what_the_flag_says(hostile, name, expected):
    rows, *_ = hostile
    assert expected in rows[f"{name}.ipynb"]["flag"], rows[f"{name}.ipynb"]["flag"]


@pytest.mark.parametrize("name", ["patch_run_doctest", "shadow_np"])
def test_tampering_scores_zero(hostile, name):
    rows, *_ = hostile
    row = rows[f"{name}.ipynb"]
    assert row["flag"].startswith("TAMPERED: ") and row["total"] == "0" and row["possible"] == "8"


def test_nothing_escaped_the_sandbox(hostile):
    rows, _, dist, before, marker = hostile
    assert _sha(build.autograder_zip(dist, NAME)) == before, "the bundle under dist/ was changed"
    assert not marker.exists(), "os.system reached the host"
    assert not (ROOT / "ntkbook" / "pwned.py").exists()
    assert _host_processes_with(TOKEN) == [], "a detached process outlived its grading"


def test_broken_notebooks_are_error_rows(hostile):
    rows, *_ = hostile
    assert "not a readable notebook" in rows["list.ipynb"]["error"]
    assert rows["kernel_exit.ipynb"]["error"], rows["kernel_exit.ipynb"]
