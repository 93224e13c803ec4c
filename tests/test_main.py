"""The chapter runner ``python -m ntkbook``."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ntkbook import __main__ as cli
from ntkbook import runner

ROOT = Path(__file__).resolve().parent.parent


def test_chapters_listed_and_resolved():
    names = runner.chapters()
    assert "01_tangent_kernel" in names
    assert runner.resolve_chapter("1").stem == "01_tangent_kernel"
    assert runner.resolve_chapter("01").stem == "01_tangent_kernel"
    assert runner.resolve_chapter("01_tangent_kernel.ipynb").stem == "01_tangent_kernel"
    assert runner.resolve_chapter("notebooks/01_tangent_kernel.ipynb").stem == "01_tangent_kernel"
    for bad in ("99", "1.5", "01_tangent", "1e0", ""):
        with pytest.raises(SystemExit, match="unknown chapter"):
            runner.resolve_chapter(bad)
    with pytest.raises(SystemExit, match="did you mean 04_resnet_spectrum"):
        runner.resolve_chapter("04_resnet_spectrm")


def test_parse_value():
    assert runner.parse_value("False") is False
    assert runner.parse_value("[64, 128]") == [64, 128]
    assert runner.parse_value("0.5") == 0.5
    assert runner.parse_value("relu") == "relu"
    assert runner.parse_value("10**30") == "10**30"  # not a literal: a string, rejected as a SEED


KNOWN = {"QUICK": (False, ""), "SEED": (0, ""), "RESULTS_PATH": (None, ""), "WIDTHS": (None, "")}


@pytest.mark.parametrize("name, hint", [("SEDD", "SEED"), ("seed", "SEED"), ("WIDTH", "WIDTHS")])
def test_unknown_parameter_is_an_error_with_did_you_mean(name, hint):
    with pytest.raises(runner.UsageError, match=f"parameter {name}: .*did you mean {hint}\\?"):
        runner.check_parameters({name: 3}, KNOWN, "04_resnet_spectrum")
    with pytest.raises(runner.UsageError, match="no such parameter"):
        runner.check_parameters({"ZZZ": 3}, KNOWN)


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 10 ** 30, 1.0, True, "10**30"])
def test_seed_outside_uint32_is_refused(seed):
    with pytest.raises(runner.UsageError, match=r"parameter SEED: must be an int in \[0, 2\*\*32\)"):
        runner.check_parameters({"SEED": seed}, KNOWN)


def test_seed_and_quick_accepted():
    runner.check_parameters({"SEED": 0, "QUICK": True}, KNOWN)
    runner.check_parameters({"SEED": 2 ** 32 - 1}, KNOWN)
    with pytest.raises(runner.UsageError, match="parameter QUICK"):
        runner.check_parameters({"QUICK": "yes"}, KNOWN)


def test_results_path_resolved_against_the_callers_directory(tmp_path):
    assert runner.resolve_results_path("out/r.json", tmp_path) == str(tmp_path / "out" / "r.json")
    assert (tmp_path / "out").is_dir() and not list((tmp_path / "out").iterdir())
    assert runner.resolve_results_path(None, tmp_path) is None
    assert runner.resolve_results_path(str(tmp_path / "a.json"), Path("/")) == str(tmp_path / "a.json")


def test_unwritable_results_path_refused_before_the_run(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(runner.UsageError, match="parameter RESULTS_PATH: cannot write"):
        runner.resolve_results_path(str(tmp_path / "file" / "r.json"), tmp_path)
    with pytest.raises(runner.UsageError, match="is a directory"):
        runner.resolve_results_path(str(tmp_path), tmp_path)
    with pytest.raises(runner.UsageError, match="None or a path"):
        runner.resolve_results_path(3, tmp_path)


def test_run_names_do_not_collide():
    notebook = runner.resolve_chapter("4")
    names = {runner.run_name(notebook) for _ in range(50)}
    assert len(names) > 45 and all(n.startswith("04_resnet_spectrum-") for n in names)


def test_params_lists_knobs_with_defaults_and_comments(capsys):
    assert cli.main(["params", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("04_resnet_spectrum")
    quick = next(line for line in out if line.strip().startswith("QUICK = False"))
    assert "quick" in quick.lower() or "test" in quick.lower()  # the comment is shown
    assert any(line.strip().startswith("SEED = 0") for line in out)


def test_list_shows_titles(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(runner.chapters()) and out[0].startswith("01_tangent_kernel ")


@pytest.mark.parametrize("argv, culprit", [
    (["run", "4", "-p", "SEDD", "3"], "parameter SEDD: .*did you mean SEED"),
    (["run", "4", "-p", "SEED", "10**30"], "parameter SEED"),
    (["run", "4", "-p", "QUICK", "maybe"], "parameter QUICK"),
])
def test_command_line_refuses_before_running(argv, culprit, capsys, tmp_path):
    assert cli.main(argv + ["-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) <= 2, err
    import re
    assert re.search(culprit, err[0]), err
    assert not list(tmp_path.iterdir())  # nothing written


def _cli(*args, cwd, **kw):
    env = {**os.environ, "NTKBOOK_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "ntkbook", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, **kw)


def test_run_1_5_is_an_error(tmp_path):
    out = _cli("run", "1.5", cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    assert "unknown chapter '1.5'" in out.stderr and len(out.stderr.strip().splitlines()) <= 2


@pytest.mark.notebook
def test_bad_value_names_the_parameter_in_a_few_lines(tmp_path):
    out = _cli("run", "4", "-p", "QUICK", "True", "-p", "DIMS", "[3]", "-o", "runs",
               cwd=tmp_path, timeout=300)
    assert out.returncode == 1, out.stderr
    # the runner's lines; the kernel, which shares stderr, may log its shutdown
    # ("[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.") before them
    err = [line for line in out.stderr.strip().splitlines() if not line.startswith("[IPKernelApp]")]
    assert err[0].startswith("error: parameter DIMS: "), out.stderr
    assert len(err) <= 6 and "Traceback" not in out.stderr, out.stderr
    failed = [p for p in (tmp_path / "runs").iterdir()]
    assert len(failed) == 1 and failed[0].name.endswith(".failed.ipynb")
    assert str(failed[0]) in err[-1]


@pytest.mark.notebook
def test_run_writes_per_run_files_and_relative_results_path(tmp_path):
    out = _cli("run", "4", "-p", "QUICK", "True", "-p", "RESULTS_PATH", "res/r4.json",
               "-o", "runs", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "Claim check" in out.stdout  # progress: the sections as they run
    results = json.loads((tmp_path / "res" / "r4.json").read_text())
    assert "decay_exponent" in results
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].startswith("04_resnet_spectrum-") and runs[0].endswith(".ipynb")
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["r4.json"]  # no partial left


@pytest.mark.notebook
def test_ctrl_c_leaves_nothing_half_written(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    env = {**os.environ, "NTKBOOK_NO_PROGRESS": "1"}
    # `python -m ntkbook run 4 ...` as a terminal starts it: with Ctrl-C raising
    # KeyboardInterrupt. (A test run started in the background by a script inherits
    # SIGINT ignored, and Python then keeps ignoring it.)
    args = ["run", "4", "-p", "QUICK", "True", "-p", "RESULTS_PATH", "old.json", "-o", "runs"]
    code = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"sys.argv = ['ntkbook', *{args!r}]; runpy.run_module('ntkbook', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", code],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    start, seen = time.monotonic(), []
    for line in proc.stdout:  # wait until the kernel is inside a long computation
        seen.append(f"{time.monotonic() - start:5.1f} s: {line.rstrip()}")
        if "Cross-check: finite networks" in line:   # its cell runs >= 4 s on 2 quiet cores
            break
    ignored = re.search(r"SigIgn:\s*(\w+)", Path(f"/proc/{proc.pid}/status").read_text())
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    proc.wait(timeout=120)
    assert proc.returncode == 130, (
        f"exit {proc.returncode} {time.monotonic() - start:.1f} s after start; runner's "
        f"SigIgn {ignored and ignored.group(1)}; lines read:\n" + "\n".join(seen)
        + "\nstderr:\n" + proc.stderr.read())
    assert (tmp_path / "old.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json", "runs"]
    assert not list((tmp_path / "runs").iterdir())
