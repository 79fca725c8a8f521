"""Where runs are stored: the tracking URI, the experiment, passwords kept out of both, and
whether the store answers. Shared by the training job, the sweeper and the commands that read a
store, so all resolve the same store and experiment whatever their working directory."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote, urlsplit

from sweeper import PROJECT_ROOT
from sweeper.errors import ConfigError, StoreError, SweeperError, one_line, root_cause
from sweeper.tracking.tags import EXPERIMENT_KIND_TAG, MODEL_TRAINING, NOTE_TAG

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
_SQLITE = "sqlite:///"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def tracking_uri(cfg_value: str | None = None, create: bool = True, key: str = "mlflow.tracking_uri") -> str:
    """The MLflow tracking URI to use, without a password.

    Resolution order: an explicit ``mlflow.tracking_uri`` value (``cfg_value``, named ``key`` in
    messages) wins; else the ``MLFLOW_TRACKING_URI`` environment variable (MLflow's own
    convention); else ``sqlite:///mlruns/mlflow.db``. A password moves to the variables its
    client reads (`without_password`); ``MLFLOW_TRACKING_URI`` is rewritten without it, so MLflow
    and the processes started later read the same clean URI. A relative ``sqlite:///`` path (or a
    bare relative folder, MLflow's file store: see `check_file_store`) is anchored at the project
    root, never at Hydra's output folder or the working directory, so every command sees the same
    store. For SQLite the database's folder is created (unless ``create`` is False), because SQLite
    cannot create missing parent folders.
    """
    if cfg_value:
        uri = without_password(cfg_value, key)
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        uri = without_password(os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = uri
    else:
        uri = DEFAULT_TRACKING_URI
    if uri.startswith(_SQLITE):
        db_path = PROJECT_ROOT / uri[len(_SQLITE):]  # an absolute path stays as it is
        if create:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        return _SQLITE + str(db_path)  # str(abs path) starts with "/", giving sqlite:////abs
    if "://" not in uri and ":" not in uri[:3]:  # a bare path: MLflow's file store
        return str(PROJECT_ROOT / uri)
    return uri


def ui_links(uri: str, experiment_id: str, run_id: str, metric: str | None = None,
             ascending: bool = True) -> tuple[str | None, str, str]:
    """How a user opens ``run_id`` of ``experiment_id`` in the MLflow UI, for the store ``uri``
    (as `tracking_uri` resolved it): (the ``mlflow ui`` command that serves a local store, run
    from the working directory, or None for a server; the address of the experiment's runs
    table, sorted by ``metric`` when given; the address of the run's page).

    The runs table's address says ``workflowType=machine_learning``: MLflow 3 otherwise opens an
    experiment on its GenAI overview, or on the view last chosen in that browser. Sorted by a
    metric, the table lists a sweep's trials as rows of their own, best first, rather than
    folded under their parent run. A server's addresses carry no user or password (the browser
    asks for them)."""
    command = None
    base = UI_ADDRESS
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        base = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl().rstrip("/")
    else:
        shown = uri
        if uri.startswith(_SQLITE) and Path(uri[len(_SQLITE):]).is_relative_to(Path.cwd()):
            shown = _SQLITE + str(Path(uri[len(_SQLITE):]).relative_to(Path.cwd()))
        command = f"mlflow ui --backend-store-uri {shown}"
    experiment = f"{base}/#/experiments/{experiment_id}"
    runs = f"{experiment}/runs?workflowType=machine_learning"
    if metric:
        runs += f"&orderByKey={quote(f'metrics.`{metric}`')}&orderByAsc={'true' if ascending else 'false'}"
    return command, runs, f"{experiment}/runs/{run_id}"


def check_file_store(uri: str, key: str) -> None:
    """ConfigError naming ``key`` if ``uri`` (as `tracking_uri` resolved it) is a folder, MLflow's
    file store: deprecated, and refused by MLflow 3.11 and later. The line gives the SQLite URI
    for that folder instead. ``MLFLOW_ALLOW_FILE_STORE=true`` (MLflow's own opt-out) lets it
    through, to an MLflow that still accepts it."""
    if "://" in uri and not uri.startswith("file:"):
        return
    if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("1", "true", "yes"):
        return
    folder = Path(uri.removeprefix("file://").removeprefix("file:"))
    raise ConfigError(
        f"{key}{' ' if key.startswith('--') else '='}{uri}: a folder is MLflow's file store, which MLflow no longer "
        f"writes to; use a SQLite file in it, {_SQLITE}{folder / 'mlflow.db'} (or set MLFLOW_ALLOW_FILE_STORE=true)")


def experiment_name(cfg: Any) -> str:
    """``mlflow.experiment`` when set, else the dataset's name (``data.name``, or the CSV's stem)."""
    mlflow = cfg.get("mlflow")
    name = (mlflow.get("experiment") if mlflow is not None else None) or cfg.data.get("name")
    return str(name) if name else Path(str(cfg.data.path)).stem


def get_or_create_experiment(client: Any, name: str, description: str | None = None) -> str:
    """Id of the experiment called ``name`` in ``client``'s store, created if missing.

    It is tagged as model training (`EXPERIMENT_KIND_TAG`) and, with ``description``, described
    (`NOTE_TAG`); an existing experiment gets the tags it lacks (one read, writes only when
    missing). Race-free: when two processes create it at the same moment, the loser catches
    MLflow's "already exists" error and reads the winner's experiment. A deleted experiment of
    that name is restored rather than shadowed. A SQLite store keeps its artifacts beside the
    database (``<dir of mlflow.db>/artifacts``), not in MLflow's default ``./mlruns`` under the
    working directory; any other store's default applies.
    """
    from mlflow.exceptions import MlflowException

    uri = client.tracking_uri
    root = (Path(uri[len(_SQLITE):]).parent / "artifacts").as_uri() if uri.startswith(_SQLITE) else None
    tags = {EXPERIMENT_KIND_TAG: MODEL_TRAINING} | ({NOTE_TAG: description} if description else {})
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=root, tags=tags)
        except MlflowException as error:
            if not lost_a_race(error):
                raise
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    for key, value in tags.items():
        if key not in experiment.tags:
            try:
                client.set_experiment_tag(experiment.experiment_id, key, value)
            except MlflowException as error:
                # The winner of the creation race writes its tags just after the experiment: a
                # server on PostgreSQL refuses the second insert of the same tag.
                if not lost_a_race(error):
                    raise
    return experiment.experiment_id


def lost_a_race(error: BaseException) -> bool:
    """Whether the store refused a write because another process made the same row first (MLflow,
    PostgreSQL, SQLite and MySQL each word it their own way)."""
    text = str(error).lower()
    return any(words in text for words in ("already exists", "unique", "duplicate key", "duplicate entry"))


#: ``scheme://user:password@host...``: the userinfo ends at the URL's last ``@`` (as browsers
#: read it), so an unencoded ``@``, ``#``, ``:`` or ``/`` stays in the password. A URL without a
#: ``:password`` does not match.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<user>[^:/?#@]*):(?P<password>.*)@(?P<host>[^@]*)",
                       re.DOTALL)


def without_password(url: str, key: str) -> str:
    """``url`` without its password, which moves to the environment variable its client reads
    instead: libpq's ``PGPASSWORD`` for PostgreSQL (``postgresql[+driver]://user:pw@host``, the
    user stays), MLflow's ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` for an
    MLflow server (``http(s)://user:pw@host``). Every URL a command is given goes through here
    first, so what it connects with, shows, writes and logs holds no password; processes it
    starts inherit the variables.

    libpq and SQLAlchemy document a password's ``@``, ``#``, ``/`` and ``:`` as percent-encoded
    (``%40``...): such a password is decoded. One typed as it is works too: its userinfo ends at
    the URL's last ``@`` and a ``#`` before the host is the password's, not a fragment.
    URLs without a password are returned as they are. ConfigError naming ``key`` when the
    variable already holds another password, or when the URL's client reads none (MySQL, ...):
    its password would reach Hydra's files and MLflow's params.
    """
    found = _USERINFO.fullmatch(url)
    if found is None or not found["password"]:
        return url
    scheme, user, password, host = found["scheme"], found["user"], unquote(found["password"]), found["host"]
    backend = scheme.lower().partition("+")[0]
    if backend in ("http", "https"):
        secrets = {"MLFLOW_TRACKING_USERNAME": unquote(user), "MLFLOW_TRACKING_PASSWORD": password}
        safe = f"{scheme}://{host}"
    elif backend == "postgresql":
        secrets = {"PGPASSWORD": password}
        safe = f"{scheme}://{user}@{host}"
    else:
        raise ConfigError(f"{key}={scheme}://{user}@{host}: a password in a {backend} URL would reach Hydra's "
                          "files and MLflow's params; give it to the driver instead (for MySQL an option file: "
                          "?read_default_file=~/.my.cnf)")
    for name, secret in secrets.items():
        if os.environ.get(name, secret) != secret:
            raise ConfigError(f"{key}={safe}: its password is not the one in ${name}; give it "
                              f"once (the URL without a password uses ${name})")
    os.environ.update(secrets)
    return safe


def existing_store(cfg_value: str | None = None, key: str = "--tracking-uri") -> tuple[Any, str]:
    """``(MlflowClient, uri)`` of a store that exists and answers, for the commands that read
    one (rerun, report, predict): never creates a store. SweeperError in one line naming
    ``key`` when the SQLite file is missing or the store cannot be read."""
    from mlflow import MlflowClient

    uri = tracking_uri(cfg_value, create=False, key=key)
    check_file_store(uri, key)
    reach_database(uri, key)
    if uri.startswith(_SQLITE) and not Path(uri[len(_SQLITE):]).is_file():
        raise SweeperError(f"{key} {uri}: no MLflow store there (the SQLite file does not exist)")
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as error:
        raise SweeperError(f"{key} {uri}: cannot read it: {one_line(error)}") from None
    return client, uri


#: MLflow error codes that mean "this request was wrong", not "the store stopped working".
_REQUEST_ERRORS = ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE")
def store_patience() -> float:
    """How long a server that stopped answering gets to come back before a sweep stops: as long
    as MLflow's own retries wait, backoff × (2ⁿ − 1) seconds for n retries (30 s with
    sweeper.tracking's defaults: retries after about 2, 4, 8 and 16 s)."""
    retries = int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4"))
    backoff = float(os.environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2"))
    return backoff * (2**retries - 1)


def is_store_failure(error: BaseException) -> bool:
    """Whether ``error``, raised by a call to the tracking store, says the store stopped working
    (unreachable server, read-only or missing database, artifact folder not writable) rather
    than that the request itself was wrong."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, SweeperError):
        return False
    if isinstance(error, MlflowException):
        return error.error_code not in _REQUEST_ERRORS
    return isinstance(error, Exception)


def store_error(key: str, url: str, doing: str, error: BaseException) -> Any:
    """The StoreError that reports ``error`` (raised while ``doing``) of the store ``key=url``:
    one line, the database's or server's own words (``url`` holds no password: `without_password`)."""
    cause = root_cause(error)
    store = f"{key}{' ' if key.startswith('--') else '='}{url}"  # an option, or a config key
    if any(character.isalpha() for character in str(cause)):
        return StoreError(f"{store}: {doing} failed: {one_line(cause)}")
    # SQLAlchemy's InvalidatePoolError says "()": its pool lost every connection to the server.
    return StoreError(f"{store}: {doing} failed: the store stopped answering ({type(cause).__name__})")


def reach_database(uri: str, key: str = "mlflow.tracking_uri", budget: float = 5.0) -> None:
    """StoreError naming ``key`` unless the database at ``uri`` (PostgreSQL, MySQL or SQL Server:
    MLflow's SQL stores but SQLite) takes a connection within ``budget`` seconds. MLflow's SQL store
    retries its first connection for ~100 s (ten attempts, backing off), so a refused, wrong or
    mistyped database would otherwise stay silent that long. Other stores: no-op."""
    backend = uri.split("://")[0].split("+")[0]  # postgresql+psycopg2:// -> postgresql
    if backend not in ("postgresql", "mysql", "mssql"):  # MLflow's SQL stores but SQLite
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    timeout = {"connect_timeout": max(1, round(budget))} if backend in ("postgresql", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args=timeout)
    except Exception as error:
        raise store_error(key, uri, "reaching the database", error) from None
    try:
        _retried(lambda: engine.connect().close(), budget, 0.5, key, uri, "reaching the database")
    finally:
        engine.dispose()


def ask_health(uri: str) -> None:
    """Return if the MLflow server at ``uri`` answers ``/health`` within 10 s; raise otherwise."""
    import urllib.request

    with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
        pass


def wait_until_alive(uri: str) -> None:
    """Return once the MLflow server at ``uri`` answers ``/health``; StoreError naming
    ``mlflow.tracking_uri`` if it does not within `store_patience` seconds. Other stores: no-op
    (a database's failure shows at the next write)."""
    if uri.startswith(("http://", "https://")):
        _retried(lambda: ask_health(uri), store_patience(), 1.0, "mlflow.tracking_uri", uri,
                 "reaching the MLflow server")


def _retried(attempt: Callable[[], Any], seconds: float, pause: float, key: str, uri: str, doing: str) -> None:
    """Call ``attempt`` every ``pause`` seconds until it returns; once ``seconds`` have passed, its
    failure is the StoreError (`store_error`) of ``key=uri`` while ``doing``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return attempt()
        except Exception as error:
            if time.monotonic() >= deadline:
                raise store_error(key, uri, doing, error) from None
            time.sleep(pause)
