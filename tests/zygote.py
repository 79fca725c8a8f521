"""``python -m MODULE ARGS`` for the tests, started in a fraction of a second.

A fresh interpreter spends ~1.7 s of CPU importing MLflow, pandas, Optuna and Hydra before
``python -m sweeper`` does anything; the suite starts about 150 such commands, on two cores.
:class:`Zygote` is one process per test worker that imports those third-party libraries once
and forks a command from them on request (what the local launcher's fork server does for a
sweep's workers). The forked process is a process of its own, with the command's working
directory, environment, argv and stdout/stderr files; it imports ``sweeper`` itself (so its
module-level settings see the command's environment) and ends as an interpreter ends
(``SystemExit``, atexit handlers, non-daemon threads joined), so its exit code is the
command's. Commands whose environment changes what was imported at start (``PYTHON*``, the
matplotlib backend, BLAS threads, MLflow's logging set-up) start a fresh interpreter instead,
and ``SWEEPER_TEST_FRESH_PROCESSES=1`` starts every one fresh.

Tests that must see a real start-up (the README's commands, the wheel, a terminal, Ctrl-C,
``-X importtime``) start their processes with ``subprocess`` themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: What the zygote imports: the third-party libraries every command imports, and those a sweep's
#: drawing process imports at its start (``optuna.importance`` imports scikit-learn where it is
#: installed, as here: ~1 s of CPU a sweep); never ``sweeper``.
PRELOAD = ("numpy", "pandas", "mlflow", "mlflow.tracking", "mlflow.pyfunc", "mlflow.models", "sqlalchemy.orm",
           "alembic.command", "matplotlib.figure", "matplotlib.backends.backend_agg", "optuna",
           "optuna.storages.journal", "hydra", "hydra.core.utils", "omegaconf", "git", "tqdm", "psycopg2",
           "optuna.importance", "optuna.visualization.matplotlib")

#: Variables read when an interpreter or a preloaded library starts: a command that sets them
#: otherwise than the zygote's environment gets a fresh interpreter (``PYTHONUNBUFFERED`` aside:
#: the forked command flushes its stdout at each line).
START_UP_ENV = ("MPLBACKEND", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "MLFLOW_CONFIGURE_LOGGING", "MLFLOW_LOGGING_LEVEL", "LANG", "LC_ALL", "LC_CTYPE")

#: Environment variables that would make a command behave differently from a user's shell.
SCRUBBED_ENV = ("HYDRA_FULL_ERROR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


def command_env(extra: dict[str, str | None] | None = None, scrubbed: tuple[str, ...] = ()) -> dict[str, str]:
    """A command's environment: the user's shell without ``SCRUBBED_ENV`` (and ``scrubbed``), the
    Agg backend, one BLAS thread (small networks: more cost more than they give, and make
    timings noisy), then ``extra`` (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV + scrubbed}
    env.setdefault("MPLBACKEND", "Agg")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


_shared: Zygote | None = None


def shared() -> Zygote:
    """This process's zygote, started on first use with ``command_env()`` and stopped at exit."""
    global _shared
    if _shared is None:
        _shared = Zygote(command_env())
        atexit.register(_shared.stop)
    return _shared


_SERVER = r"""
import importlib, json, os, runpy, selectors, signal, socket, sys

for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
    except ImportError:
        pass

listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the keepers below are reaped as they end


def command(request):
    # The forked command: its own folder, environment, argv and files, then `python -m` itself.
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if request["new_session"]:
        os.setsid()
    for fd, path in ((0, os.devnull), (1, request["out"]), (2, request["err"])):
        opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_APPEND)
        os.dup2(opened, fd)
        os.close(opened)
    if request["env"].get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(line_buffering=True)
    if request["script"]:  # python SCRIPT ARGS: its folder first on sys.path
        sys.path[0] = os.path.dirname(os.path.abspath(request["script"]))
        sys.argv = [request["script"], *request["args"]]
        runpy.run_path(request["script"], run_name="__main__")
    else:  # python -m MODULE ARGS: the working directory first
        sys.path[0] = request["cwd"]
        sys.argv = ["-m", *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    sys.exit(0)


def keep(connection, request):
    # Fork the command, tell the client its pid, wait for it and tell its exit code.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        connection.close()
        command(request)  # ends the process as `python -m` ends: SystemExit, or the exception
    try:
        connection.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:  # the client may have gone (a test past its timeout): this process ends all the same
        os._exit(0)


selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
selector.register(sys.stdin, selectors.EVENT_READ)  # end-of-file: the test worker is gone
print("ready", flush=True)
while True:
    events = [key.fileobj for key, _ in selector.select()]
    if sys.stdin in events:
        break
    connection, _ = listener.accept()
    with connection.makefile("rb") as lines:
        request = json.loads(lines.readline())
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
        listener.close()
        selector.close()
        keep(connection, request)
    connection.close()
"""


class Zygote:
    """The zygote process of one test worker: :meth:`run` is ``subprocess.run`` for ``python -m``."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.folder = Path(tempfile.mkdtemp(prefix="sweeper-zygote-"))
        self.address = str(self.folder / "socket")
        self.log = open(self.folder / "zygote.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER, self.address, json.dumps(PRELOAD)],
                                        cwd=self.folder, env=self.env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log)
        if self.process.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the tests' zygote did not start: {(self.folder / 'zygote.log').read_text()}")

    def forks(self, env: dict[str, str]) -> bool:
        """Whether a command with ``env`` can be forked from here (else: a fresh interpreter)."""
        if os.environ.get("SWEEPER_TEST_FRESH_PROCESSES") == "1" or self.process.poll() is not None:
            return False
        keys = {key for key in (*env, *self.env) if key.startswith("PYTHON") or key in START_UP_ENV}
        return all(env.get(key) == self.env.get(key) for key in keys - {"PYTHONUNBUFFERED"})

    def run(self, args: list[str], env: dict[str, str], cwd: str | Path,
            timeout: float) -> subprocess.CompletedProcess:
        """``subprocess.run([python, *args], capture_output=True, text=True, ...)``; ``args`` is
        ``["-m", MODULE, ...]`` or ``[SCRIPT, ...]``."""
        command = [sys.executable, *map(str, args)]
        if not self.forks(env):
            return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        with tempfile.TemporaryDirectory(dir=self.folder) as files:
            out, err = Path(files, "stdout"), Path(files, "stderr")
            started = self.start(command[1:], env, cwd, out, err)
            try:
                code = started.wait(timeout)
            except subprocess.TimeoutExpired as expired:
                started.kill()
                raise subprocess.TimeoutExpired(command, expired.timeout, out.read_bytes(), err.read_bytes()) from None
            # As text=True reads a pipe: the locale's encoding, universal newlines.
            return subprocess.CompletedProcess(command, code, out.read_text(), err.read_text())

    def start(self, args: list[str], env: dict[str, str], cwd: str | Path, out: Path, err: Path | None = None,
              new_session: bool = False) -> Forked | subprocess.Popen:
        """``subprocess.Popen([python, *args], ...)`` with stdout to the file ``out`` and stderr to
        ``err`` (None: to ``out`` too), both emptied first, stdin from /dev/null; ``args`` is
        ``["-m", MODULE, ...]`` or ``[SCRIPT, ...]``; ``new_session``: ``start_new_session``."""
        err = err or out
        for path in (out, err):
            path.write_bytes(b"")
        if not self.forks(env):
            with open(out, "ab") as stdout, open(err, "ab") as stderr:
                return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                                        stdin=subprocess.DEVNULL, start_new_session=new_session)
        module, script = (args[1], None) if args[0] == "-m" else (None, str(args[0]))
        rest = args[2:] if module else args[1:]
        request = {"module": module, "script": script, "args": [str(arg) for arg in rest], "env": env,
                   "cwd": str(Path(cwd).resolve()), "out": str(out), "err": str(err), "new_session": new_session}
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.address)
        connection.sendall(json.dumps(request).encode() + b"\n")
        return Forked(connection, [sys.executable, *args])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Forked:
    """A command forked by the zygote, as ``subprocess.Popen`` shows one: ``pid``, ``returncode``,
    ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``."""

    def __init__(self, connection: socket.socket, args: list[str]) -> None:
        self.args = args
        self.connection = connection
        self.buffer = b""
        self.pid = int(self._line(None))
        self.returncode: int | None = None

    def _line(self, timeout: float | None) -> bytes | None:
        """The keeper's next line (the pid, then the exit code), or None after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.connection], [], [], left)[0]:
                return None
            chunk = self.connection.recv(64)
            if not chunk:
                raise RuntimeError(f"the tests' zygote lost the command {self.args}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = int(line)
            self.connection.close()
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(timeout=0.001)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
