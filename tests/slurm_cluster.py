"""A real one-node SLURM cluster for the tests: ``munged``, ``slurmdbd`` (on MariaDB), ``slurmctld``
and ``slurmd``, each in the foreground under this process, all in one temporary directory.

The node is ``localhost``: no cgroups (``proctrack/linuxproc``, ``task/none``), four CPUs declared
whatever the machine has (``SlurmdParameters=config_overrides``), so a batch of three or four
small trials runs at once as it would on a cluster. Accounting goes through a real ``slurmdbd``
into a throwaway MariaDB database, because submitit, like any user, asks ``sacct`` how a job
ended: without accounting a cancelled job would look pending for ever.

Every daemon listens on a free 127.0.0.1 port and talks to its own ``munged`` socket, so the
cluster touches nothing of the machine's (``/etc/slurm``, ``/run/munge``); clients find it
through ``SLURM_CONF`` (``SlurmCluster.env``). Use it in a test module::

    from tests.slurm_cluster import slurm  # noqa: F401

The daemons run as root (``slurmd`` starts each job as its submitter), so the fixture skips when
this process is not root or the packages are missing, except under ``CI``, where ``.ci/run``
installs them and a cluster that cannot start is a failure rather than a silently green run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import SLURM, require
from tests.servers import free_port, tail

CLUSTER = "sweepertest"
NODE_CPUS = 4
NODE_MEMORY_MB = 16384
PARTITION = "debug"
START_TIMEOUT = 60.0
DB_USER, DB_PASSWORD, DB_NAME = "slurm", "slurmdb-test-pw", "slurm_acct_db"
BINARIES = ("munged", "munge", "slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr",
            "scontrol", "sinfo", "squeue", "scancel", "mariadbd", "mariadb-install-db", "mariadb")


def missing_requirement() -> str | None:
    """Why a cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "a one-node SLURM cluster needs root (slurmd starts jobs as their users)"
    missing = [name for name in BINARIES
               if shutil.which(name) is None and shutil.which(name, path="/usr/sbin:/sbin") is None]
    if missing:
        return f"{', '.join(missing)} not found"
    return None


def _binary(name: str) -> str:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") or name


class SlurmCluster:
    """One throwaway SLURM cluster; ``start()``, then ``env`` for clients, ``stop()`` at the end."""

    def __init__(self) -> None:
        # Not pytest's tmp_path: munged wants every directory above its socket traversable by
        # all, and a short path keeps socket names short.
        self.base = Path(tempfile.mkdtemp(prefix="sweeper-slurm-", dir="/tmp"))
        self.base.chmod(0o755)
        self.conf = self.base / "slurm.conf"
        self.logs = self.base / "log"
        self.state = self.base / "state"  # slurmctld's StateSaveLocation
        self.munge_socket = self.base / "munge" / "munge.socket"
        self.db_socket = self.base / "db" / "mysqld.sock"
        self.ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "mariadb")}
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- clients ---------------------------------------------------------------------------

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """A SLURM client command (``sacct``, ``scancel``, ...) against this cluster."""
        return subprocess.run([_binary(cmd[0]), *cmd[1:]], env=self.env, capture_output=True, text=True,
                              check=check, timeout=timeout)

    def sacct(self, *job_ids: str) -> dict[str, str]:
        """``{job id: state}`` of the jobs (array ids: each of their tasks) as accounting has them."""
        out = self.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)).stdout
        return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if line}

    def squeue(self, *args: str) -> list[str]:
        """Ids of the jobs ``squeue`` lists (pending, running or completing)."""
        return self.run("squeue", "-h", "-o", "%i", *args).stdout.split()

    def kill_task(self, job_id: str) -> int:
        """SIGKILL the process a running job's first step started (the job's Python), as the
        out-of-memory killer would: no signal the job can catch. Returns its pid."""
        raw_id = self.run("squeue", "-h", "-j", job_id, "-o", "%A").stdout.strip()  # 1234_2 -> 1236
        rows = [line.split() for line in self.run("scontrol", "listpids", raw_id).stdout.splitlines()[1:]]
        [pid] = [int(row[0]) for row in rows if row[2:4] == ["0", "0"]]  # step 0, its task 0
        os.kill(pid, signal.SIGKILL)
        return pid

    # -- start -----------------------------------------------------------------------------

    def start(self) -> SlurmCluster:
        try:
            for folder in ("log", "state", "spool/localhost", "munge", "db"):
                (self.base / folder).mkdir(parents=True, exist_ok=True)
            self._start_munge()
            self._start_mariadb()
            self._write_config()
            self._spawn("slurmdbd", _binary("slurmdbd"), "-D")
            self._wait("slurmdbd answering", lambda: self.run("sacctmgr", "-n", "list", "cluster",
                                                               check=False).returncode == 0)
            self._spawn("slurmctld", _binary("slurmctld"), "-D", "-i")
            self._spawn("slurmd", _binary("slurmd"), "-D", "-N", "localhost")
            self._wait("the node idle", lambda: self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle")
            self._wait("the cluster registered with slurmdbd",
                       lambda: CLUSTER in self.run("sacctmgr", "-n", "-P", "list", "cluster", "format=cluster",
                                                   check=False).stdout.split())
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        key = self.base / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._spawn("munged", _binary("munged"), "-F", f"--socket={self.munge_socket}", f"--key-file={key}",
                    f"--pid-file={self.base / 'munge' / 'munged.pid'}",
                    f"--seed-file={self.base / 'munge' / 'munged.seed'}",
                    f"--log-file={self.logs / 'munged.log'}")
        self._wait("munged", lambda: subprocess.run(
            [_binary("munge"), "-n", "-S", str(self.munge_socket)], capture_output=True).returncode == 0)

    def _start_mariadb(self) -> None:
        data = self.base / "db" / "data"
        subprocess.run([_binary("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        # Durability off: a test database trades it for speed.
        self._spawn("mariadbd", _binary("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root",
                    f"--socket={self.db_socket}", f"--pid-file={self.base / 'db' / 'mysqld.pid'}",
                    "--bind-address=127.0.0.1", f"--port={self.ports['mariadb']}", "--skip-log-bin",
                    "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0",
                    "--innodb-lock-wait-timeout=900")
        grant = (f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'; "
                 f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';")
        self._wait("mariadbd", lambda: subprocess.run(
            [_binary("mariadb"), "--no-defaults", "-S", str(self.db_socket), "-u", "root", "-e", grant],
            capture_output=True).returncode == 0)

    def _write_config(self) -> None:
        b = self.base
        self.conf.write_text(f"""\
ClusterName={CLUSTER}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={self.ports['slurmctld']}
SlurmdPort={self.ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={self.state}
SlurmdSpoolDir={b}/spool/%n
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd.pid
SlurmctldLogFile={self.logs}/slurmctld.log
SlurmdLogFile={self.logs}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['slurmdbd']}
AccountingStoragePass={self.munge_socket}
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        # slurmdbd reads slurmdbd.conf beside $SLURM_CONF, and only if no one else can read it.
        dbd = b / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['slurmdbd']}
SlurmUser=root
PidFile={b}/slurmdbd.pid
LogFile={self.logs}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mariadb']}
StorageUser={DB_USER}
StoragePass={DB_PASSWORD}
StorageLoc={DB_NAME}
""")
        dbd.chmod(0o600)

    def _spawn(self, name: str, *cmd: str) -> None:
        with open(self.logs / f"{name}.out", "wb") as out:
            # Its own session: stop() signals the daemon and whatever it started at once.
            self.processes[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, env=self.env,
                                                    cwd=self.base, start_new_session=True)

    def _wait(self, what: str, ready, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited with {self.processes[dead[0]].returncode} "
                                   f"while waiting for {what}:\n{self._logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM: no {what} after {timeout:.0f}s:\n{self._logs()}")

    def _logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{tail(path, 15)}" for path in sorted(self.logs.glob("*")))

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel what still runs, stop the daemons (newest first) and remove the directory."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user=root", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for name, process in reversed(list(self.processes.items())):
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    """A one-node SLURM cluster with accounting, for one test module."""
    require(SLURM, missing_requirement())
    cluster = SlurmCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
