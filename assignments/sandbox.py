"""Run one untrusted grading job in a bubblewrap sandbox (no Docker needed).

Grading a submission executes the student's code. ``run_sandboxed`` runs a
command (``otter run`` on one notebook) inside ``bwrap`` (Debian/Ubuntu
package ``bubblewrap``) so that the code

* has no network (own network namespace: only a loopback device);
* sees a read-only view of the course environment: ``/usr``, the Python
  interpreter, the virtual environment at ``/opt/venv``, and the ``ntkbook``
  package alone at ``/opt/ntkbook/ntkbook`` (on ``PYTHONPATH``) — not the
  repository, so neither the solution masters nor ``assignments/dist`` nor
  the hidden tests of other assignments are reachable;
* writes only to its own throwaway folder (``/grading``, a fresh host
  temporary folder per submission holding a copy of the notebook and of the
  autograder bundle) and a small private ``/tmp``;
* starts with an empty environment (``--clearenv``; only the variables set
  here), its own PID, IPC and UTS namespaces, no capabilities, and runs as
  ``nobody`` (uid 65534) when the grader is root;
* is limited in wall time, address space (memory), processes, open files,
  file size and console output;
* and leaves nothing behind: when the command ends or times out, the PID
  namespace ends and the kernel kills every process it started
  (``--die-with-parent`` covers a grader that dies first).

What it does not stop: code inside the sandbox can still do anything to the
grading run itself (patch otter or numpy inside the kernel, forge its own
results, loop until the timeout, use all the cores it is given). Those are
detected, not prevented — see ``guard/sitecustomize.py`` and ``tamper.py``.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUARD_SITE = HERE / "guard"

# Paths inside the sandbox.
WORK = "/grading"
VENV = "/opt/venv"
PACKAGE_ROOT = "/opt/ntkbook"
GUARD_DIR = "/opt/grading-guard"
GUARD_FIFO = "/run/guard"
NOBODY = 65534

INSTALL_HINT = ("bubblewrap (`bwrap`) is needed to grade untrusted notebooks safely: "
                "install it with `sudo apt-get install bubblewrap` (Debian/Ubuntu; "
                "`make sandbox-deps` does this), or grade with Docker instead "
                "(`otter grade`, see assignments/README.md)")


class SandboxError(RuntimeError):
    """The sandbox cannot be set up on this machine (message says how to fix it)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed grading job.

    ``timeout``: wall seconds; ``memory_mb``: address space per process
    (RLIMIT_AS; jax and XLA reserve a few GB of virtual memory, so keep it
    generous); ``max_procs``: processes and threads it may add (RLIMIT_NPROC);
    ``max_file_mb``: size of any file written;
    ``max_output_kb``: console output kept in the log (the rest is dropped);
    ``tmp_mb``: size of the private ``/tmp``.
    """

    timeout: float = 600.0
    memory_mb: int = 16384
    max_procs: int = 512
    max_file_mb: int = 64
    max_output_kb: int = 512
    tmp_mb: int = 256
    max_open_files: int = 1024


def bwrap_path() -> str:
    """Path of ``bwrap``; ``SandboxError`` saying how to install it when missing."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(INSTALL_HINT)
    return path


def check_sandbox() -> None:
    """Raise ``SandboxError`` unless a trivial command runs in the sandbox here."""
    proc = subprocess.run([bwrap_path(), "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                           "--proc", "/proc", "true"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SandboxError(f"bubblewrap is installed but cannot create a sandbox here "
                           f"({proc.stderr.strip() or 'exit ' + str(proc.returncode)}); "
                           f"unprivileged user namespaces may be disabled "
                           f"(sysctl kernel.unprivileged_userns_clone=1)")


def _dirs(path: str) -> list[str]:
    """``--perms 0755 --dir`` for every ancestor of ``path`` (bwrap makes them 0700 otherwise)."""
    args, parts = [], Path(path).parts[1:-1]
    for i in range(1, len(parts) + 1):
        args += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i])]
    return args


def _system_binds() -> list[str]:
    """Read-only ``/usr`` (and ``/bin`` etc. as on the host), the loader cache and time zone."""
    args = ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


ETC_FILES = {  # a minimal /etc of our own: localhost (otter's log server) and one user
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "passwd": f"root:x:0:0:root:/root:/bin/sh\nnobody:x:{NOBODY}:{NOBODY}:nobody:{WORK}/home:/bin/sh\n",
    "group": f"root:x:0:\nnogroup:x:{NOBODY}:\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}


def _etc_binds(etc_dir: Path) -> list[str]:
    args = []
    for name, text in ETC_FILES.items():
        (etc_dir / name).write_text(text)
        args += ["--ro-bind", str(etc_dir / name), f"/etc/{name}"]
    return args


def _python_binds(venv: Path) -> list[str]:
    """The interpreter the virtual environment was made from (at its own path) and the venv at /opt/venv."""
    base = Path(sys.base_prefix).resolve()
    args = []
    if not str(base).startswith("/usr/"):
        args += _dirs(str(base)) + ["--ro-bind", str(base), str(base)]
    return args + _dirs(VENV) + ["--ro-bind", str(venv), VENV]


def _environment(extra: dict[str, str]) -> dict[str, str]:
    """The sandbox's whole environment: nothing is inherited from the grader."""
    env = {
        "PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": f"{WORK}/home",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": f"{GUARD_DIR}:{PACKAGE_ROOT}",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{WORK}/home/.matplotlib",
        "JUPYTER_PLATFORM_DIRS": "1",
        "JAX_PLATFORMS": "cpu",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "NTKBOOK_NO_PROGRESS": "1",
    }
    env.update(extra)
    return env


def bwrap_command(argv: list[str], *, workdir: Path, fifo: Path | None, venv: Path,
                  package_dir: Path, limits: Limits, env: dict[str, str] | None = None,
                  as_root: bool | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` (sandbox paths) in the sandbox.

    ``workdir`` (host folder) becomes ``/grading`` (its parent folder receives
    the sandbox's ``/etc`` files) (writable, the working
    directory); ``fifo`` (host named pipe) becomes ``/run/guard``, the
    kernel guard's report channel; ``venv`` is mounted read-only at
    ``/opt/venv`` and ``package_dir`` (the ``ntkbook`` package folder) at
    ``/opt/ntkbook/ntkbook``.
    """
    as_root = os.geteuid() == 0 if as_root is None else as_root
    cmd = [bwrap_path(), "--die-with-parent", "--new-session",
           "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--hostname", "grading"]
    if not as_root:  # an unprivileged user needs a user namespace to mount anything
        cmd += ["--unshare-user"]
    cmd += _system_binds() + _etc_binds(workdir.parent) + _python_binds(venv)
    cmd += _dirs(PACKAGE_ROOT + "/ntkbook") + ["--ro-bind", str(package_dir), PACKAGE_ROOT + "/ntkbook"]
    cmd += _dirs(GUARD_DIR + "/x") + ["--ro-bind", str(GUARD_SITE), GUARD_DIR]
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp",
            "--bind", str(workdir), WORK]
    if fifo is not None:
        cmd += _dirs(GUARD_FIFO) + ["--bind", str(fifo), GUARD_FIFO]
    cmd += ["--chdir", WORK, "--clearenv"]
    for key, value in _environment(env or {}).items():
        cmd += ["--setenv", key, value]
    cmd += ["--"]
    if as_root:  # drop to nobody: no capabilities, and RLIMIT_NPROC applies (never to root)
        cmd += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return cmd + list(argv)


def _tasks_of(uid: int) -> int:
    """Processes and threads the user ``uid`` runs now (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return count


def _set_limits(limits: Limits):
    """``preexec_fn``: resource limits inherited by everything in the sandbox.

    RLIMIT_NPROC counts every task of the sandbox's user on the machine (other
    sandboxes running at the same time, and for a non-root grader the
    grader's own processes), so the limit is what runs now plus ``max_procs``.
    """
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    max_tasks = _tasks_of(uid) + limits.max_procs

    def apply():
        mb = 1 << 20
        for name, value in ((resource.RLIMIT_AS, limits.memory_mb * mb),
                            (resource.RLIMIT_NPROC, max_tasks),
                            (resource.RLIMIT_FSIZE, limits.max_file_mb * mb),
                            (resource.RLIMIT_NOFILE, limits.max_open_files),
                            (resource.RLIMIT_CORE, 0),
                            (resource.RLIMIT_CPU, int(limits.timeout * 4) + 60)):
            resource.setrlimit(name, (value, value))
    return apply


def _copy_capped(stream, log, cap: int) -> None:
    """Copy ``stream`` to ``log`` up to ``cap`` bytes, then drain and drop the rest."""
    written = 0
    for chunk in iter(lambda: stream.read(65536), b""):
        if written < cap:
            log.write(chunk[: cap - written])
            written += len(chunk)
            if written >= cap:
                log.write(b"\n[grader: output truncated]\n")
    log.flush()


@dataclass
class Result:
    returncode: int | None   # None: killed at the timeout
    seconds: float


def run_sandboxed(argv: list[str], *, workdir: Path, log_path: Path, venv: Path, package_dir: Path,
                  limits: Limits = Limits(), fifo: Path | None = None,
                  env: dict[str, str] | None = None) -> Result:
    """Run ``argv`` in the sandbox; console output (capped) goes to ``log_path``.

    The sandbox is killed (with every process inside it) at
    ``limits.timeout`` seconds; ``Result.returncode`` is then None.
    """
    if os.geteuid() == 0:
        _chown_tree(workdir, NOBODY)
    cmd = bwrap_command(argv, workdir=workdir, fifo=fifo, venv=venv, package_dir=package_dir,
                        limits=limits, env=env)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_set_limits(limits),
                                start_new_session=True)
        with _LOCK:
            _RUNNING.add(proc)
        copier = threading.Thread(target=_copy_capped,
                                  args=(proc.stdout, log, limits.max_output_kb << 10), daemon=True)
        copier.start()
        try:
            returncode = proc.wait(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if proc.poll() is None:
                kill(proc)
            with _LOCK:
                _RUNNING.discard(proc)
            copier.join(timeout=10)
    return Result(returncode, time.perf_counter() - start)


_RUNNING: set = set()
_LOCK = threading.Lock()


def kill_all() -> None:
    """Kill every sandbox still running (on Ctrl-C)."""
    with _LOCK:
        running = list(_RUNNING)
    for proc in running:
        kill(proc)


def kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox (bwrap's process group; the PID namespace takes the rest with it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _chown_tree(path: Path, uid: int) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, uid)
        for name in files:
            os.chown(os.path.join(root, name), uid, uid)
