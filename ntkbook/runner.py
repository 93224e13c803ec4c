"""Running a chapter: find it, check its parameters, execute it with papermill.

The command line (``python -m ntkbook``, in ``__main__.py``), the seed sweep
(``sweep.py``) and the tests all run chapters through ``run_chapter``.
Parameter values given as text are Python literals (``parse_value``), checked
against the notebook's parameters cell (``check_parameters``) before anything
runs; SEED must be an int in [0, 2**32) and RESULTS_PATH a writable path.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import secrets
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SEED_LIMIT = 2 ** 32  # jax.random.PRNGKey takes a uint32 seed


class UsageError(Exception):
    """A bad command line: printed as one short message, exit status 2."""


def chapters(directory: Path = NOTEBOOKS) -> list[str]:
    """Names (no suffix) of the chapter notebooks, sorted."""
    return sorted(p.stem for p in directory.glob("[0-9][0-9]_*.ipynb"))


def resolve_chapter(name: str, directory: Path = NOTEBOOKS) -> Path:
    """Path of chapter ``name``: its stem (``02_hessian_scaling``, ``.ipynb`` optional) or number (``2``)."""
    names = chapters(directory)
    stem = Path(name).name.removesuffix(".ipynb")
    if stem.isdigit():
        matches = [n for n in names if n.startswith(f"{int(stem):02d}_")]
    else:
        matches = [n for n in names if n == stem]
    if len(matches) != 1:
        hint = difflib.get_close_matches(stem, names, n=1, cutoff=0.5)
        hint = f" (did you mean {hint[0]}?)" if hint else ""
        raise SystemExit(f"error: unknown chapter {name!r}{hint}; choose a number 1-{len(names)} "
                         f"or one of: {', '.join(names)}")
    return directory / f"{matches[0]}.ipynb"


def parse_value(text: str):
    """A Python literal when ``text`` is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def notebook_parameters(notebook: Path) -> dict:
    """The parameters cell of ``notebook``: name -> (default, comment), in order."""
    import papermill as pm

    return {name: (p["default"], p["help"])
            for name, p in pm.inspect_notebook(str(notebook)).items()}


def check_parameters(params: dict, known: dict, chapter: str = "the chapter") -> None:
    """``UsageError`` for an unknown name (with a did-you-mean), a bad SEED or QUICK."""
    for name in params:
        if name not in known:
            close = [k for k in known if k.lower() == name.lower()]
            close = close or difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise UsageError(f"parameter {name}: {chapter} has no such parameter{hint} "
                             f"(`python -m ntkbook params {chapter}` lists them)")
    if "SEED" in params:
        seed = params["SEED"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
            raise UsageError(f"parameter SEED: must be an int in [0, 2**32), got {seed!r}")
    if "QUICK" in params and not isinstance(params["QUICK"], bool):
        raise UsageError(f"parameter QUICK: must be True or False, got {params['QUICK']!r}")


def resolve_results_path(value, cwd: Path) -> str | None:
    """RESULTS_PATH made absolute against ``cwd`` and checked writable (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"parameter RESULTS_PATH: must be None or a path, got {value!r}")
    path = (cwd / Path(value).expanduser()).resolve()
    if path.is_dir():
        raise UsageError(f"parameter RESULTS_PATH: {path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.parent / f".{path.name}.{secrets.token_hex(4)}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"parameter RESULTS_PATH: cannot write to {path.parent} "
                         f"({err.strerror or err})") from None
    return str(path)


def run_name(notebook: Path) -> str:
    """``STEM-YYYYmmdd-HHMMSS-XXXX``: distinct for runs started at the same second."""
    return f"{notebook.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def section_reporter(notebook: Path, echo):
    """An nbclient ``on_cell_start`` hook printing each section as execution enters it."""
    cells = json.loads(notebook.read_text())["cells"]
    section, heading_of, num_code = None, {}, 0
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    section = line.lstrip("#").strip()
                    break
        elif cell["cell_type"] == "code":
            num_code += 1
            if "id" in cell:
                heading_of[cell["id"]] = (section, num_code)
    start, shown = time.perf_counter(), {"section": None}

    def on_cell_start(cell, cell_index, **_):
        heading, number = heading_of.get(cell.get("id"), (shown["section"], None))
        if heading and heading != shown["section"]:
            shown["section"] = heading
            where = f"cell {number}/{num_code}" if number else "cell"
            echo(f"  [{time.perf_counter() - start:6.1f} s] {heading}  ({where})")

    return on_cell_start


def run_chapter(notebook: Path, parameters: dict, output: Path, *, log_output=False,
                on_cell_start=None):
    """Execute ``notebook`` with papermill, writing it to ``output``.

    ``on_cell_start(cell=..., cell_index=...)``, when given, is called as each
    cell starts (nbclient's hook). Parameters are passed as they are: the
    command line checks them first (``check_parameters``).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import papermill as pm

    hooks = {"on_cell_start": on_cell_start} if on_cell_start else {}
    output.parent.mkdir(parents=True, exist_ok=True)
    # The kernel's own log (ipykernel 7 warns on every start that it talks TCP
    # on localhost) is noise here: errors only.
    return pm.execute_notebook(str(notebook), str(output), parameters=parameters,
                               cwd=str(notebook.parent), kernel_name="python3",
                               log_output=log_output, progress_bar=False,
                               extra_arguments=["--IPKernelApp.log_level=ERROR"], **hooks)


def failure_summary(err, known) -> str:
    """At most 5 lines: ``parameter X: ...`` for a rejected value, else the error itself."""
    evalue = " ".join(str(getattr(err, "evalue", "") or err).split())
    ename = getattr(err, "ename", type(err).__name__)
    if len(evalue) > 300:
        evalue = evalue[:297] + "..."
    if evalue.startswith("parameter "):
        name, _, rest = evalue[len("parameter "):].partition(" ")
        if name in known:
            return f"parameter {name}: {rest.removeprefix(':').strip()}"
    cell = getattr(err, "exec_count", None)
    where = f" (in the notebook's cell [{cell}])" if cell else ""
    return f"{ename}: {evalue}{where}"
