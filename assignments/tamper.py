"""Detect tampering: a static scan of submitted code and the kernel guard's verdict.

Two independent checks, both turning into the ``flag`` column of the scores:

* ``scan_notebook``: reads every code cell that differs from the handed-out
  student notebook and flags constructs that these assignments never need
  and that tampering does need — otter, ``sys.modules``, builtins, os,
  subprocess, ctypes, gc, ``/proc``, ``exec``/``eval``/``__import__``,
  introspection (``globals()``, ``getattr``, dunder attributes), pickling,
  file writes, shell escapes (``!cmd``, ``%%bash``) and IPython internals.
  A flag is a request for review, not a verdict: an honest notebook that
  opens a file is flagged too.
* ``read_guard_report``/``guard_verdict``: what the guard inside the kernel
  (``guard/sitecustomize.py``) reported through its pipe: suspicious events,
  whether otter's, numpy's, jax's and ntkbook's functions were still the
  originals when the tests ran, and the scores otter held at the end.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

# Names whose mere mention in submitted code asks for review.
SUSPICIOUS_NAMES = {
    "otter": "mentions otter", "Checker": "mentions otter's Checker",
    "GradingResults": "mentions otter's results", "run_doctest": "mentions otter's run_doctest",
    "sys": "uses sys", "builtins": "uses builtins", "__builtins__": "uses __builtins__",
    "os": "uses os", "subprocess": "uses subprocess", "ctypes": "uses ctypes", "gc": "uses gc",
    "importlib": "uses importlib", "__import__": "uses __import__", "inspect": "uses inspect",
    "exec": "calls exec", "eval": "calls eval", "compile": "calls compile",
    "globals": "calls globals()", "locals": "calls locals()", "vars": "calls vars()",
    "dir": "calls dir()", "getattr": "calls getattr", "setattr": "calls setattr",
    "delattr": "calls delattr", "open": "opens files", "pickle": "uses pickle", "dill": "uses dill",
    "marshal": "uses marshal", "shutil": "uses shutil", "pathlib": "uses pathlib",
    "socket": "uses socket", "signal": "uses signal", "atexit": "uses atexit",
    "threading": "uses threading", "multiprocessing": "uses multiprocessing",
    "get_ipython": "uses IPython internals", "In": "uses IPython history", "Out": "uses IPython history",
    "_ih": "uses IPython history", "_oh": "uses IPython history", "doctest": "uses doctest",
    "codecs": "uses codecs", "base64": "uses base64", "allow_pickle": "loads pickles",
    "breakpoint": "calls breakpoint", "memoryview": "uses memoryview", "types": "uses types",
}
# Dunder attributes ordinary numerical code uses.
HARMLESS_DUNDERS = {"__init__", "__name__", "__doc__", "__call__", "__len__", "__getitem__",
                    "__iter__", "__next__", "__repr__", "__str__", "__post_init__", "__version__"}
TEXT_PATTERNS = [(re.compile(r"/proc\b"), "mentions /proc"),
                 (re.compile(r"^\s*[!%]", re.M), "IPython magic or shell escape"),
                 (re.compile(r"\b(sys\.modules|sys\.meta_path|sys\.path_hooks)\b"), "touches sys.modules / imports")]


def _cell_sources(nb: dict) -> list[str]:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    out = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out


def scan_source(source: str) -> set[str]:
    """Review flags of one code cell (a set of short reasons)."""
    flags = {reason for pattern, reason in TEXT_PATTERNS if pattern.search(source)}
    code = "\n".join("pass" if line.lstrip().startswith(("!", "%")) else line
                     for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return flags | {"code that does not parse"}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in HARMLESS_DUNDERS:
                flags.add(f"dunder attribute {node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
            names += [m.split(".")[0] for m in mods] + [a.asname or a.name for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name.startswith("__") and node.name not in HARMLESS_DUNDERS:
                flags.add(f"defines {node.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(w in node.value for w in ("otter", "__import__", "/proc", "sys.modules", "builtins")):
                flags.add("suspicious string")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            pass
        for name in names:
            if name in SUSPICIOUS_NAMES:
                flags.add(SUSPICIOUS_NAMES[name])
    return flags


def scan_notebook(nb: dict, handout: dict | None) -> list[str]:
    """Sorted review flags of the code cells of ``nb`` not identical to a cell of ``handout``."""
    given = {s.strip() for s in _cell_sources(handout)} if handout else set()
    flags: set[str] = set()
    for source in _cell_sources(nb):
        if source.strip() and source.strip() not in given:
            flags |= scan_source(source)
    return sorted(flags)


@dataclass
class GuardReport:
    """What the kernel guard sent (only lines carrying the token of its START line count)."""

    started: bool = False
    verified: int = 0
    final: bool = False
    flags: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    forged: int = 0


def read_guard_report(text: str) -> GuardReport:
    report, token = GuardReport(), None
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        tok, _, detail = rest.partition(" ")
        if kind == "START" and token is None:
            token, report.started = tok, True
            continue
        if token is None or tok != token:
            report.forged += 1
            continue
        if kind == "VERIFY":
            report.verified += 1
        elif kind == "FINAL":
            report.final = True
        elif kind == "TAMPER":
            report.tampering.append(detail)
        elif kind == "FLAG":
            report.flags.append(detail)
        elif kind == "SCORE":
            parts = detail.split()
            try:
                report.scores[parts[0]] = (float(parts[1]), float(parts[2]))
            except (IndexError, ValueError):
                report.forged += 1
    return report


def guard_verdict(report: GuardReport, otter_scores: dict) -> tuple[list[str], list[str]]:
    """``(tampering, review flags)`` from the guard's report and otter's ``results.json`` scores.

    Tampering (the score is set to zero): the guard never started or never saw
    the final results written, a check found replaced functions or modules,
    lines with a wrong token, or otter's scores differ from the guard's.
    """
    tampering = list(dict.fromkeys(p for line in report.tampering for p in line.split("; ") if p))
    if not report.started:
        tampering.append("the kernel guard did not start")
    elif not report.final and not report.tampering:
        tampering.append("otter's results were not written by its own final cell")
    if report.forged:
        tampering.append(f"{report.forged} forged guard line(s)")
    if report.final and otter_scores != report.scores:
        tampering.append("otter's results.json differs from the scores the kernel held")
    flags = [f"runtime: {f}" for f in dict.fromkeys(report.flags)]
    return tampering, flags
