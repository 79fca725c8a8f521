"""Optuna storages: a journal file by default, any SQLAlchemy URL (PostgreSQL) to share.

``hydra.sweeper.storage`` is either a file path (no ``scheme://``: Optuna's ``JournalStorage``
on a journal file, the local default ``mlruns/optuna.log``, which optuna-dashboard opens as it
is) or an SQLAlchemy URL (``RDBStorage``: SQLite, PostgreSQL). The sweeper and every job open
it through :func:`open_storage`, so a job in another process (joblib) or on another machine
talks to the same study the same way.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import filelock
import optuna
import sqlalchemy.exc
import sqlalchemy.pool
from sqlalchemy.engine import make_url

from sweeper.sweep.study import retry
from sweeper.tracking.store import store_error

# SQLite lets one writer in at a time; waiting this long for the lock (instead of failing at
# once with "database is locked") lets concurrent workers share one file.
SQLITE_BUSY_TIMEOUT_SECONDS = 60

# A journal file is written under a lock file (a symlink beside it) held for one append and its
# fsync. A process killed holding it leaves it behind, and every other process waits until it is
# older than the grace period (Optuna's 30 s stalled a rerun after a kill that long). A hold took
# at most 6 ms in 400 appends on the 2-core test machine under a full test run: 5 s is a wide margin.
JOURNAL_LOCK_GRACE_SECONDS = 5

_storages: dict[tuple, optuna.storages.BaseStorage] = {}
_lock = threading.Lock()
_lock_engine = functools.cache(sqlalchemy.create_engine)  # budget_lock's pooled engine, one per URL


def is_journal(url: str) -> bool:
    """Whether ``url`` names a journal file (a path) rather than a database (``scheme://...``)."""
    return "://" not in url


def resolve_storage_url(url: str, root: str | os.PathLike) -> str:
    """Return ``url`` with a relative file path made absolute under ``root``.

    ``mlruns/optuna.log`` and ``sqlite:///mlruns/optuna.db`` mean files under ``<root>/mlruns/``,
    so a job in another working directory or process finds the same file. The file's folder is
    created (neither Optuna nor SQLite does). Other URLs (PostgreSQL) are returned unchanged.
    """
    if is_journal(url):
        path = (Path(root) / Path(url).expanduser()).resolve()  # an absolute path stays itself
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(root) / parsed.database  # an absolute database path stays as it is
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.isabs(parsed.database):
        return url
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


# Optuna's "Caught an error from sqlalchemy: … Falling back …" warning prints a failed query with its
# whole SQL statement (9 lines). If the database is gone, the fallback fails too and the sweep stops
# with one line naming ``hydra.sweeper.storage``; if not, the fallback answered: nothing to tell.
for _handler in logging.getLogger("optuna").handlers:  # Optuna's own handler, made as it was imported
    _handler.addFilter(lambda record: not record.getMessage().startswith("Caught an error from sqlalchemy"))


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.BaseStorage:
    """Open (once per process and URL) the storage ``url`` names (see :func:`resolve_storage_url`).
    A journal file (one machine's processes) has no heartbeats: a dead sweeper's trial is found by
    its owner's process id. An RDB storage: SQLite's busy timeout, heartbeats if ``heartbeat_interval``."""
    key = (url,) if is_journal(url) else (url, heartbeat_interval, grace_period)
    with _lock:
        if key not in _storages and is_journal(url):
            lock = optuna.storages.journal.JournalFileSymlinkLock(url, grace_period=JOURNAL_LOCK_GRACE_SECONDS)
            backend = optuna.storages.journal.JournalFileBackend(url, lock_obj=lock)
            _storages[key] = optuna.storages.JournalStorage(backend)
        if key not in _storages:
            busy = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
            engine_kwargs = busy if make_url(url).get_backend_name() == "sqlite" else {"pool_pre_ping": True}
            # Workers started together on an empty database all create Optuna's tables. On
            # PostgreSQL they take turns (an advisory lock); elsewhere the losers of that race
            # get "already exists" (an integrity or programming error) and succeed on a retry.
            for attempt in range(5):
                try:
                    with _schema_lock(url):  # heartbeats' ExperimentalWarning: the sweep ignores it
                        _storages[key] = optuna.storages.RDBStorage(
                            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                            grace_period=grace_period, heartbeat_stale_trial_callback=retry)
                    break
                except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))
        return _storages[key]


@contextlib.contextmanager
def _pg_advisory_lock(engine: sqlalchemy.engine.Engine, name: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock keyed on ``name`` (same name, same lock) while the block
    runs: a transaction's lock, released as the block ends the connection's transaction."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield


def _schema_lock(url: str) -> contextlib.AbstractContextManager[None]:
    """On PostgreSQL, hold an advisory lock while Optuna creates or checks its tables: on a fresh
    engine without a pool (the process may be a fork of one with pooled connections)."""
    if make_url(url).get_backend_name() != "postgresql":
        return contextlib.nullcontext()
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    return _pg_advisory_lock(engine, "sweeper:optuna-schema")


@contextlib.contextmanager
def budget_lock(url: str, study_name: str) -> Iterator[bool]:
    """Hold a lock shared by every worker of ``study_name`` while one counts and asks a trial.

    Else workers asking at the same moment ask past ``n_trials`` (Optuna cannot delete a trial).
    A journal or SQLite file: a file lock beside it. PostgreSQL: an advisory lock keyed on the
    study name. Other databases: none (a trial asked past the budget goes back as WAITING).
    Yields whether it holds a lock.
    """
    parsed = None if is_journal(url) else make_url(url)
    if parsed is not None and parsed.get_backend_name() == "postgresql":
        with _pg_advisory_lock(_lock_engine(url, pool_pre_ping=True), study_name):
            yield True
        return
    path = url if parsed is None else parsed.database if parsed.get_backend_name() == "sqlite" else None
    locked = path not in (None, "", ":memory:")
    with filelock.FileLock(f"{path}.sweeper-lock") if locked else contextlib.nullcontext():
        yield locked


def is_storage_failure(error: BaseException) -> bool:
    """Whether ``error``, raised by a call to an Optuna storage, says the store stopped working
    (gone, read-only, unreachable) rather than that the call was wrong. A journal file's lock
    that cannot be removed raises a bare RuntimeError ("did not possess lock") while handling
    the OS's error; Optuna's own refusals (a finished trial updated) are OptunaErrors, and any
    other RuntimeError is not the store's."""
    return (isinstance(error, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError))
            or type(error) is RuntimeError and isinstance(error.__context__, OSError))


@contextlib.contextmanager
def storage_calls(url: str, doing: str) -> Iterator[None]:
    """Turn a storage failure inside the block into one StoreError naming ``hydra.sweeper.storage``."""
    try:
        yield
    except Exception as error:
        if not is_storage_failure(error):
            raise
        raise store_error("hydra.sweeper.storage", url, doing, error) from None
