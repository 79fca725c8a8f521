"""Optuna storage URLs: anchoring relative SQLite paths and opening one storage per URL.

The sweeper and every job open the storage through :func:`open_storage`, so a job in another
process (joblib) or on another machine talks to the same study the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy.exc
import sqlalchemy.pool
from sqlalchemy.engine import make_url

from sweeper.tracking.store import hide_password, store_error

# SQLite lets one writer in at a time; waiting this long for the lock (instead of failing at
# once with "database is locked") lets concurrent workers share one file.
SQLITE_BUSY_TIMEOUT_SECONDS = 60

_storages: dict[tuple, optuna.storages.RDBStorage] = {}
_lock = threading.Lock()


def resolve_storage_url(url: str, root: str | os.PathLike) -> str:
    """Return ``url`` with a relative SQLite path made absolute under ``root``.

    ``sqlite:///mlruns/optuna.db`` means ``<root>/mlruns/optuna.db`` (like MLflow's default), so
    Hydra changing the working directory of a job, or a job in another process, finds the same
    file. The SQLite file's folder is created (SQLite cannot), as for the MLflow store. Other
    URLs (PostgreSQL) and absolute SQLite paths are returned unchanged.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    if os.path.isabs(parsed.database):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return url
    path = Path(root) / parsed.database
    path.parent.mkdir(parents=True, exist_ok=True)
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


def _retry_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    from sweeper.sweep.study import retry  # study builds on storage, not the reverse

    retry(study, trial)


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """Open (once per process and URL) an RDB storage, with a busy timeout for SQLite."""
    key = (url, heartbeat_interval, grace_period)
    with _lock:
        if key not in _storages:
            engine_kwargs = {}
            if make_url(url).get_backend_name() == "sqlite":
                engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
            else:
                engine_kwargs["pool_pre_ping"] = True
            # Workers started together on an empty database all create Optuna's tables. On
            # PostgreSQL they take turns (an advisory lock); elsewhere the losers of that race
            # get "already exists" (an integrity or programming error) and succeed on a retry.
            for attempt in range(5):
                try:
                    with _schema_lock(url), warnings.catch_warnings():
                        # Heartbeats are "experimental" in Optuna: nothing a user could act on.
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        _storages[key] = optuna.storages.RDBStorage(
                            url,
                            engine_kwargs=engine_kwargs,
                            heartbeat_interval=heartbeat_interval,
                            grace_period=grace_period,
                            heartbeat_stale_trial_callback=_retry_stale,
                        )
                    break
                except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                    if attempt == 4:
                        raise
                    time.sleep(0.5 * (attempt + 1))
        return _storages[key]


@contextlib.contextmanager
def _pg_advisory_lock(engine: sqlalchemy.engine.Engine, name: str) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock keyed on ``name`` (same name, same lock)."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, hold an advisory lock while Optuna creates or checks its tables.

    A fresh engine without a pool: the process may be a fork whose parent has pooled
    connections, and the lock goes with the connection when it closes.
    """
    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with _pg_advisory_lock(engine, "sweeper:optuna-schema"):
            yield
    finally:
        engine.dispose()


@contextlib.contextmanager
def budget_lock(url: str, study_name: str) -> Iterator[bool]:
    """Hold a lock shared by every worker of ``study_name`` while one counts and asks a trial.

    Workers that counted and then asked at the same moment would otherwise ask one trial past
    ``n_trials`` (and Optuna cannot delete a trial). SQLite: an exclusive ``flock`` on a file
    beside the database (SQLite serves one machine anyway). PostgreSQL: a session advisory lock
    keyed on the study name. Other databases: no lock; the sweeper then hands a trial asked past
    the budget back as WAITING. Yields whether it holds a lock.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        with open(f"{parsed.database}.sweeper-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif backend == "postgresql":
        with _pg_advisory_lock(_lock_engine(url), study_name):
            yield True
    else:
        yield False


@functools.cache
def _lock_engine(url: str) -> sqlalchemy.engine.Engine:
    return sqlalchemy.create_engine(url, pool_pre_ping=True)


def save_intermediate_values(storage: optuna.storages.BaseStorage, trial_id: int, values: dict[int, float]) -> None:
    """Store a trial's intermediate values ``{step: value}``, in one transaction when possible.

    ``set_trial_intermediate_value`` commits once per value: 1.8 ms each on SQLite, at every epoch
    of every trial. Inserting a job's new values in one transaction takes 0.07 ms each (measured
    on a local SQLite file, Optuna 4.9). That goes through Optuna's table model, which is not
    public API; if it has moved, or a step was stored before (the insert would break the
    table's one-value-per-step rule), the values go through the public call one by one.
    """
    backend = getattr(storage, "_backend", storage)  # _CachedStorage wraps the RDBStorage
    if isinstance(backend, optuna.storages.RDBStorage):
        try:
            _insert_intermediate_values(backend, trial_id, values)
            return
        except (ImportError, AttributeError, sqlalchemy.exc.IntegrityError):
            pass
    for step, value in values.items():
        storage.set_trial_intermediate_value(trial_id, step, value)


def _insert_intermediate_values(storage: optuna.storages.RDBStorage, trial_id: int, values: dict[int, float]) -> None:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    row = models.TrialIntermediateValueModel
    with _create_scoped_session(storage.scoped_session) as session:  # IntegrityError propagates
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, trial.state)  # a finished trial stays as it is
        rows = []
        for step, value in values.items():
            stored, kind = row.intermediate_value_to_stored_repr(value)
            rows.append(row(trial_id=trial_id, step=step, intermediate_value=stored, intermediate_value_type=kind))
        session.add_all(rows)


def is_storage_failure(error: BaseException) -> bool:
    """Whether ``error``, raised by a call to an Optuna RDB storage, says the database stopped
    working (gone, read-only, unreachable) rather than that the call was wrong."""
    return isinstance(error, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, OSError))


@contextlib.contextmanager
def storage_calls(url: str, doing: str) -> Iterator[None]:
    """Turn a storage failure inside the block into one StoreError naming ``hydra.sweeper.storage``."""
    try:
        yield
    except Exception as error:
        if not is_storage_failure(error):
            raise
        raise store_error("hydra.sweeper.storage", url, doing, error) from None
