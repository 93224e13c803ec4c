"""Kernel guard for sandboxed grading: detects tampering with the grading run.

Mounted read-only in the grading sandbox and first on its ``PYTHONPATH``, so
Python imports it at start-up in every process there; it acts only in the
notebook kernel (``ipykernel_launcher``) and only when the grader passed
``NTKBOOK_GUARD_FIFO`` — before any student code runs. It then

1. opens the report channel (a named pipe read by the grader outside the
   sandbox: what is written there cannot be taken back) and writes a random
   token that later reports must carry (the token lives only here);
2. when the first notebook cell runs (after IPython has set itself up, before
   any of the notebook's code), imports otter, doctest, numpy, scipy.special,
   jax and ``ntkbook`` and records every function, class and method they
   define (object identity and code object);
3. installs an audit hook (PEP 578; it cannot be removed) that reports
   student code (a notebook cell, not otter, on the call stack) starting
   processes, loading native code (ctypes), walking the heap (gc), tracing,
   opening ``/proc``, the test files or the results file, writing outside
   its folder, ``exec``/``compile``, or setting attributes on classes;
4. when otter opens a test file and when its final cell writes the results,
   checks that everything recorded in 2 is unchanged, that ``sys.modules``
   still holds the same modules, that the notebook's globals do not shadow
   modules or builtins the tests use, and reports the scores otter holds.

The grader (``tamper.py``) turns any report, a missing report, or scores that
disagree with otter's ``results.json`` into a flag. This raises the bar; it
is not a proof: Python code in the same process can in principle defeat any
in-process check (e.g. by patching and restoring between two checks).
"""
import os
import sys


def _install(fifo):
    import re
    import types

    from time import perf_counter as clock

    write, getframe, token = os.write, sys._getframe, os.urandom(16).hex()
    fd = os.open(fifo, os.O_WRONLY)
    here = __file__
    modules_dict = sys.modules
    g = {"busy": False, "recorded": False}  # shared state of the closures below
    cell_file = re.compile(r"(/ipykernel_\d+/\d+\.py|^<ipython-input-.*>|^<cell.*>)$")

    def report(kind, detail=""):
        line = f"{kind} {token} {detail}".replace("\n", " ")[:2000] + "\n"
        try:
            write(fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    def is_cell(filename):
        return cell_file.search(filename) is not None

    def code_of(obj):
        try:
            inner = getattr(obj, "__func__", None) or getattr(obj, "fget", None) or obj
            return inner.__code__ if type(inner) is types.FunctionType else None
        except Exception:
            return None

    # -- 2. the record (taken at the first cell) --------------------------------------------
    def snapshot():
        import builtins
        import contextlib  # noqa: F401  (recorded below)
        import doctest  # noqa: F401
        import inspect  # noqa: F401
        import io  # noqa: F401
        import math  # noqa: F401
        import pickle  # noqa: F401

        import numpy
        import scipy.special  # noqa: F401
        import jax
        import jax.numpy  # noqa: F401
        import ntkbook
        import otter
        import otter.execute
        import otter.test_files
        from otter.execute import Checker
        from otter.test_files import TestFile

        prefixes = ("otter", "doctest", "numpy", "ntkbook", "pickle", "io", "contextlib", "inspect",
                    "math")
        watched = {name: mod for name, mod in list(modules_dict.items())
                   if isinstance(mod, types.ModuleType)
                   and (name.split(".")[0] in prefixes or name in ("jax", "jax.random", "jax.nn")
                        or name.startswith(("scipy.special", "jax.numpy", "jax.scipy.special")))}
        kinds = (types.FunctionType, types.BuiltinFunctionType, type, types.ModuleType,
                 classmethod, staticmethod, property, types.MethodType)
        record = []  # (owner, name, object, code object)
        for name, mod in watched.items():
            for attr, obj in list(vars(mod).items()):
                if isinstance(obj, kinds) or callable(obj):
                    record.append((mod, attr, obj, code_of(obj)))
                if isinstance(obj, type) and getattr(obj, "__module__", "") == name:
                    for cattr, cobj in list(vars(obj).items()):
                        if isinstance(cobj, kinds):
                            record.append((obj, cattr, cobj, code_of(cobj)))
        ipython_owned = {"input", "quit", "exit", "help", "display", "get_ipython", "copyright",
                         "credits", "license", "breakpoint"}
        g.update(
            builtins=builtins, watched=watched, record=record, Checker=Checker,
            builtin_names={k: v for k, v in vars(builtins).items()
                           if not k.startswith("_") and k not in ipython_owned},
            aliases={"np": numpy, "numpy": numpy, "jnp": jax.numpy, "jax": jax, "nk": ntkbook,
                     "ntkbook": ntkbook, "otter": otter},
            test_file_types=tuple(t for t in vars(otter.test_files).values()
                                  if isinstance(t, type) and issubclass(t, TestFile)),
            get_results=Checker.__dict__["get_results"].__func__,
            otter_dir=os.path.dirname(otter.__file__) + os.sep,
            recorded=True)

    # -- 4. the checks ----------------------------------------------------------------------
    def integrity(env=None):
        """Problems found (strings): replaced functions, modules, globals."""
        problems, builtins = [], g["builtins"]
        for name, mod in g["watched"].items():
            if modules_dict.get(name) is not mod:
                problems.append(f"sys.modules[{name!r}] replaced")
        for owner, attr, obj, code in g["record"]:
            now = vars(owner).get(attr, None)
            if now is not obj:
                problems.append(f"{getattr(owner, '__name__', owner)}.{attr} replaced")
            elif code is not None and code_of(obj) is not code:
                problems.append(f"{getattr(owner, '__name__', owner)}.{attr}.__code__ replaced")
            if len(problems) > 20:
                break
        for name, obj in g["builtin_names"].items():
            if vars(builtins).get(name, None) is not obj:
                problems.append(f"builtins.{name} replaced")
        if env is not None:
            if env.get("__builtins__", builtins) not in (builtins, vars(builtins)):
                problems.append("__builtins__ of the notebook replaced")
            aliases, watched = g["aliases"], g["watched"]
            for name, obj in list(env.items()):
                if name in aliases and obj is not aliases[name]:
                    problems.append(f"global {name!r} is not the module the tests expect")
                elif isinstance(obj, types.ModuleType) and getattr(obj, "__name__", None) in watched \
                        and obj is not watched[obj.__name__]:
                    problems.append(f"global {name!r} is a second copy of module {obj.__name__}")
                elif name in g["builtin_names"] and name != "open" and obj is not g["builtin_names"][name]:
                    # (IPython puts its own `open` into the notebook's namespace)
                    problems.append(f"global {name!r} shadows a builtin")
        return problems

    def final(env):
        """otter's final cell is writing the results: check everything, report the scores."""
        problems, seen = integrity(env), set()
        for tf in g["get_results"](g["Checker"]):
            if type(tf) not in g["test_file_types"]:
                problems.append(f"foreign result object {type(tf).__name__}")
                continue
            if tf.name in seen:
                problems.append(f"result for {tf.name} twice")
            seen.add(tf.name)
            report("SCORE", f"{tf.name} {float(tf.score)!r} {float(tf.possible)!r}")
        report("FINAL" if not problems else "TAMPER", "; ".join(problems[:10]))

    # -- 3. the audit hook ------------------------------------------------------------------
    def origin(frame):
        """('cell', frame) if a notebook cell is met before otter's code walking out, ('otter', frame), or (None, None)."""
        otter_dir = g.get("otter_dir", "\0")
        while frame is not None:
            fn = frame.f_code.co_filename
            if fn.startswith(otter_dir):
                return "otter", frame
            if is_cell(fn):
                return "cell", frame
            frame = frame.f_back
        return None, None

    def direct_caller_is_cell(frame):
        while frame is not None and frame.f_code.co_filename == here:
            frame = frame.f_back
        return frame is not None and is_cell(frame.f_code.co_filename)

    severe = {"os.system", "os.posix_spawn", "os.fork", "os.forkpty", "subprocess.Popen",
              "pty.spawn", "os.kill", "os.killpg", "gc.get_objects", "gc.get_referrers",
              "gc.get_referents", "sys.settrace", "sys.setprofile", "sys.addaudithook",
              "os.chmod", "os.remove", "os.rename", "shutil.rmtree", "os.truncate", "os.symlink",
              "os.link", "os.unlink", "socket.bind", "socket.connect"}
    direct_only = ("ctypes.", "object.__setattr__", "object.__delattr__", "exec", "compile",
                   "os.listdir", "os.scandir")
    results_file = re.compile(r"^/tmp/tmp[\w-]+\.pkl$")  # tempfile.mkstemp(suffix=".pkl") in otter
    writable_roots = ("/grading/", "/tmp/", "/dev/null")

    def check_open(path, mode, flags, frame):
        if not isinstance(path, str):
            return
        who, cell = origin(frame)
        real = os.path.abspath(path)
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR)))
        if who == "otter" and "/tests/" in real and real.endswith(".py"):
            problems = integrity()
            report("VERIFY" if not problems else "TAMPER", "; ".join(problems[:10]))
        elif who == "cell":
            names = set(cell.f_code.co_names)
            if writing and not g.get("final") and results_file.match(real) and {"pickle", "dump"} <= names:
                g["final"] = True  # otter's last cell: `with open(results_path, "wb") as f: pickle.dump(...)`
                final(cell.f_globals)
            elif real.startswith("/proc/") or "/tests/" in real or "autograder" in real or real == fifo:
                report("FLAG", f"open {real}")
            elif writing and (not real.startswith(writable_roots) or real.endswith((".pkl", ".json"))):
                report("FLAG", f"write {real}")

    def hook(event, args):
        if g["busy"]:
            return
        g["busy"] = True
        try:
            if not g["recorded"]:
                if event == "exec" and args and is_cell(getattr(args[0], "co_filename", "")):
                    start = clock()
                    snapshot()  # before the first cell's code runs
                    report("RECORDED", f"{len(g['record'])} objects in {clock() - start:.2f} s")
                return
            if event == "open":
                check_open(args[0], args[1], args[2] if len(args) > 2 else None, getframe(1))
            elif event.startswith(direct_only):
                if direct_caller_is_cell(getframe(1)):
                    report("FLAG", f"{event} called from a notebook cell")
            elif event in severe or event.startswith(("os.exec", "os.spawn")):
                if event.startswith("socket.") and len(args) > 1 and isinstance(args[1], tuple) \
                        and args[1] and args[1][0] in ("127.0.0.1", "localhost", "::1"):
                    return  # otter's own log server, connected to from its first cell
                if origin(getframe(1))[0] == "cell":
                    report("FLAG", f"{event} {str(args)[:200]}")
        except Exception as err:  # the hook must never break grading itself
            report("FLAG", f"guard error {type(err).__name__}: {err}")
        finally:
            g["busy"] = False

    report("START", f"pid={os.getpid()}")
    sys.addaudithook(hook)


def _main():
    if "ipykernel_launcher" in " ".join(getattr(sys, "orig_argv", sys.argv)):
        fifo = os.environ.pop("NTKBOOK_GUARD_FIFO", None)
        if fifo:
            _install(fifo)


_main()
del _main, _install
