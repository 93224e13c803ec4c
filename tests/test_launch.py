"""Where readers run the chapters without `make setup`: Binder and Colab.

Binder builds ``binder/`` (the readers' lock only); each chapter's Colab cell
installs ntkbook with the same lock when ntkbook is not importable. The
fresh-environment Colab check downloads ~1 GB and takes minutes: it runs when
``NTKBOOK_COLAB_TEST=1`` (see README.md), against this checkout.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONFIG = (ROOT / "_config.yml").read_text()


def _colab_cell(path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [i for i, c in enumerate(cells) if "colab-install" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, path.name
    return cells, tagged[0]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_colab_cell_installs_from_the_configured_repository_before_any_import(path):
    cells, index = _colab_cell(path)
    cell = cells[index]
    source = "".join(cell["source"])
    assert "remove-cell" in cell["metadata"]["tags"]  # the book leaves it out
    assert 'if importlib.util.find_spec("ntkbook") is None:' in source  # no-op where installed
    url = re.search(r"^repository:\n(?:  .*\n)*?  url: (\S+)", CONFIG, re.M).group(1)
    branch = re.search(r"^repository:\n(?:  .*\n)*?  branch: (\S+)", CONFIG, re.M).group(1)
    assert f'"{url}"' in source and f"/{branch}/requirements-reader.lock" in source
    code = [c for c in cells[:index] if c["cell_type"] == "code"]
    assert len(code) == 1 and "parameters" in code[0]["metadata"]["tags"]  # only the parameters before it
    assert "import" not in "".join(code[0]["source"])


def test_binder_environment_is_the_readers_lock():
    reqs = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements-reader.lock" in reqs.splitlines()
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime in ("python-3.11", "python-3.12", "python-3.13")
    assert "--no-deps ." in (ROOT / "binder" / "postBuild").read_text()
    assert "binderhub_url" in CONFIG and "colab_url" in CONFIG


def test_binder_environment_resolves(tmp_path):
    """The pinned readers' set resolves on Binder's platform (Linux x86_64, runtime.txt's Python)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (it is in the lock's dev extra)")
    version = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    out = subprocess.run([uv, "pip", "compile", "binder/requirements.txt", "--python-version", version,
                          "--python-platform", "x86_64-manylinux_2_28", "--no-header", "--quiet",
                          "--no-annotate", "-o", str(tmp_path / "resolved.txt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    resolved = {line.split("==")[0] for line in (tmp_path / "resolved.txt").read_text().splitlines()
                if "==" in line}
    assert {"jax", "neural-tangents", "tensorflow", "jupyterlab-myst", "papermill"} <= resolved
    assert not resolved & {"jupyter-book", "pytest", "otter-grader", "playwright"}


def _python313():
    for candidate in ("python3.13", "/root/.pyenv/versions/3.13.0/bin/python3.13"):
        path = shutil.which(candidate)
        if path and subprocess.run([path, "-c", ""], capture_output=True).returncode == 0:
            return path
    return None


@pytest.mark.skipif(os.environ.get("NTKBOOK_COLAB_TEST") != "1",
                    reason="set NTKBOOK_COLAB_TEST=1: builds a fresh Python 3.13 environment")
def test_colab_cell_in_a_fresh_python313_without_ntkbook(tmp_path):
    """Chapter 4 (quick) in a bare Jupyter kernel: the Colab cell installs ntkbook, then it runs."""
    python = _python313()
    if python is None:
        pytest.skip("no Python 3.13 here")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", "ipykernel", "nbclient", "nbformat"],
                   check=True)
    assert subprocess.run([py, "-c", "import ntkbook"], cwd=tmp_path,
                          capture_output=True).returncode != 0
    nb = json.loads((ROOT / "notebooks" / "04_resnet_spectrum.ipynb").read_text())
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    params["source"] = "".join(params["source"]).replace("QUICK = False", "QUICK = True")
    (tmp_path / "ch4.ipynb").write_text(json.dumps(nb))
    script = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], 4); "
              "nbclient.NotebookClient(nb, timeout=1800, kernel_name='python3').execute(); "
              "nbformat.write(nb, sys.argv[1])")
    env = {**os.environ, "NTKBOOK_REPO": str(ROOT), "NTKBOOK_NO_PROGRESS": "1"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run([py, "-c", script, str(tmp_path / "ch4.ipynb")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    executed = json.loads((tmp_path / "ch4.ipynb").read_text())
    _, index = _colab_cell(tmp_path / "ch4.ipynb")
    said = "".join("".join(o.get("text", "")) for o in executed["cells"][index]["outputs"])
    assert "ntkbook was not installed: installed it from" in said, said
    assert subprocess.run([py, "-c", "import ntkbook"], cwd=tmp_path,
                          capture_output=True).returncode == 0
