"""Real servers for the scale-out tests: a PostgreSQL 15 cluster and an ``mlflow server``.

Both listen on free 127.0.0.1 ports, live in their own temporary directories, and are stopped
and removed at teardown. Import the fixtures into a test module::

    from tests.servers import mlflow_server, postgres, postgres_url  # noqa: F401

PostgreSQL refuses to run as root, and CI runs as root, so when this process is root the
cluster belongs to the ``postgres`` system user (created as ``sweeper-pg`` if there is none)
and ``initdb``/``pg_ctl`` run through ``runuser``.

Without the PostgreSQL binaries the fixtures skip, except under ``CI`` (``.ci/run`` installs
them), where a missing server is a failure rather than a silently green run
(``tests.components.require``).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import POSTGRESQL, require_path


def find_pg_bin() -> Path:
    """PostgreSQL 15's binaries (Debian's layout), else the newest installed major version."""
    if os.environ.get("SWEEPER_PG_BIN"):
        return Path(os.environ["SWEEPER_PG_BIN"])
    preferred = Path("/usr/lib/postgresql/15/bin")
    if preferred.exists():
        return preferred
    def major(initdb: Path) -> int:
        version = initdb.parent.parent.name
        return int(version) if version.isdigit() else 0

    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=major)
    return installed[-1].parent if installed else preferred


PG_BIN = find_pg_bin()
PG_SUPERUSER = "sweeper"
PG_PASSWORD = "sweeper-test-pw"
SERVICE_USERS = ("postgres", "sweeper-pg")
MLFLOW_START_TIMEOUT = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, below the kernel's ephemeral range.

    The kernel's own pick (``bind(0)``) is an ephemeral port, which any outgoing connection of
    the machine (a test's client, a daemon talking to another) may take as its source port
    before the server binds it: under load, slurmctld lost its port that way ("Address already
    in use"). A port below that range is never given to an outgoing connection."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    pick = random.SystemRandom()  # not the test's seeded random: two workers must not agree
    for _ in range(200):
        port = pick.randrange(10000, max(low, 10001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 between 10000 and {low}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def service_user() -> str | None:
    """The unprivileged user that owns the cluster, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = SERVICE_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True, capture_output=True,
    )
    return name


class PostgresServer:
    """One throwaway PostgreSQL cluster: ``initdb`` into a temporary dir, ``pg_ctl start``."""

    def __init__(self, bin_dir: Path = PG_BIN) -> None:
        self.bin_dir = bin_dir
        self.user = service_user()
        self.port = free_port()
        # Not pytest's tmp_path: that lives under a root-only 0700 directory the service user
        # cannot enter. /tmp is world-traversable, and a short path keeps the socket name short.
        self.base = Path(tempfile.mkdtemp(prefix="sweeper-pg-", dir="/tmp"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, cwd=self.base, check=True, **kwargs)

    def start(self) -> PostgresServer:
        if self.user is not None:
            uid = pwd.getpwnam(self.user)
            os.chown(self.base, uid.pw_uid, uid.pw_gid)
        pwfile = self.base / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.user is not None:
            os.chown(pwfile, uid.pw_uid, uid.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", PG_SUPERUSER, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions",
                      capture_output=True, text=True, timeout=120)
            self.resume()
        except subprocess.CalledProcessError as err:
            self.cleanup()
            raise RuntimeError(f"PostgreSQL did not start: {err.stderr or err.stdout}\n"
                               f"{tail(self.log)}") from None
        finally:
            pwfile.unlink(missing_ok=True)
        return self

    def resume(self) -> None:
        """``pg_ctl start`` on the cluster's data (first started by :meth:`start`, or stopped by
        :meth:`pause`)."""
        # fsync off: a test cluster trades durability for speed. Connections: three
        # workers' pools, the MLflow server's pool, and the test's own clients.
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start",
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=90)

    def pause(self) -> None:
        """Stop the server as a crash would (``pg_ctl stop -m immediate``), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop",
                  capture_output=True, timeout=60)

    def url(self, database: str = "postgres", driver: str | None = "psycopg2") -> str:
        """SQLAlchemy URL, ``postgresql+psycopg2://…``; ``driver=None``: ``postgresql://…``."""
        scheme = "postgresql" if driver is None else f"postgresql+{driver}"
        return f"{scheme}://{PG_SUPERUSER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_SUPERUSER,
                                password=PG_PASSWORD, dbname=database, connect_timeout=10)

    def _admin(self, statement: str) -> None:
        """Run one statement that cannot run inside a transaction (CREATE/DROP DATABASE)."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def create_database(self, name: str | None = None) -> str:
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        # A killed worker may leave a connection behind; FORCE ends it (PostgreSQL 13+).
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30",
                          "stop", capture_output=True, timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on a free loopback port, its runs in PostgreSQL, artifacts proxied."""

    def __init__(self, backend_store_uri: str, artifacts: Path, workers: int = 2) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifacts = artifacts
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = artifacts.parent / "mlflow-server.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", self.backend_store_uri,
                "--serve-artifacts", "--artifacts-destination", str(self.artifacts),
                "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers)]

    def start(self, timeout: float = MLFLOW_START_TIMEOUT) -> MlflowServer:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        # No job execution: it starts seven huey consumers (~20 s of CPU) for GenAI jobs a
        # sweep never submits.
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "wb") as log:
            # Its own session, so teardown can signal the server and its uvicorn workers at once.
            # cwd: anything the server writes beside itself stays in its temporary directory.
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            cwd=self.artifacts.parent, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n"
                                   f"{tail(self.log)}")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout:.0f}s:\n{tail(self.log)}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # A throwaway server: no need to wait long for a graceful shutdown.
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster for the whole session."""
    require_path(POSTGRESQL, PG_BIN / "initdb", "PostgreSQL's initdb")
    require_path(POSTGRESQL, PG_BIN / "pg_ctl", "PostgreSQL's pg_ctl")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database of its own for each test, as a ``postgresql+psycopg2://`` URL."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database for one module's scenarios, as a ``postgresql+psycopg2://`` URL."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(scope="session")
def mlflow_server(postgres: PostgresServer, tmp_path_factory) -> Iterator[MlflowServer]:
    """One ``mlflow server`` for the session, backed by its own PostgreSQL database.

    Tests share it, so each logs under an experiment name of its own.
    """
    database = postgres.create_database("mlflow")
    base = tmp_path_factory.mktemp("mlflow-server")
    # The driver is named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, and the
    # [postgres] extra installs psycopg2.
    server = MlflowServer(postgres.url(database), base / "artifacts")
    try:
        server.start()
        yield server
    finally:
        server.stop()
