"""MLflow side of a run: the store, the experiment, and what one run logs.

Importing this package does not import MLflow; the functions that need it import it lazily.
"""

import contextlib
import importlib
import logging
import os
from typing import Any, Iterator

from sweeper.errors import ConfigError, one_line

# Downloading a run's artifacts draws a progress bar per file on stderr: not for our commands.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's HTTP client retries 7 times with exponential backoff and a 120 s timeout: an
# unreachable server held a run, a rerun or a report for minutes. Bounded here (a user's own
# setting wins): retries after about 2, 4, 8 and 16 s, so a server that stays down is reported
# within ~30 s and a shorter outage is ridden out; a request gets no answer for at most 10 s.
for _name, _value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4"), ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2"),
                      ("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")):
    os.environ.setdefault(_name, _value)
# With a tracking server, MLflow prints "View run <name> at: <url>" for every run it ends: one
# such pair per trial in a sweep's log. The sweep's summary names its parent run and the UI.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# Each retry is also a WARNING line of urllib3's; the one line that ends the command says it all.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
# MLflow's SQL store logs every database error with its traceback before raising it; the error
# reaches the user as one line naming mlflow.tracking_uri (its table-creation notes go too). A
# filter, not a level: MLflow's logging setup resets its child loggers' levels when it loads.
logging.getLogger("mlflow.store.db.utils").addFilter(lambda record: record.levelno >= logging.CRITICAL)

@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """The logger ``name`` (and the loggers under it) at WARNING for the block: INFO lines that
    are not the user's business (MLflow validating an input example, a launcher's job lines)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


from sweeper.tracking.store import (
    DEFAULT_TRACKING_URI,
    ask_health,
    existing_store,
    experiment_name,
    get_or_create_experiment,
    reach_database,
    tracking_uri,
)


# -- a sweep's MLflow experiment ------------------------------------------------------------

def import_store(config: Any) -> None:
    """Import MLflow's client and, for a database URI, SQLAlchemy's ORM and Alembic (what
    MLflow's SQL store is built on): ~1.4 s of the sweep's start that touches no store
    (``connect`` then opens it), run while the space is checked."""
    from mlflow import MlflowClient  # noqa: F401
    from omegaconf import OmegaConf

    uri = tracking_uri(OmegaConf.select(config, "mlflow.tracking_uri", default=None), create=False)
    if not uri.startswith(("http://", "https://", "file:", "databricks")) and "://" in uri:
        for name in ("sqlalchemy.orm", "alembic.command"):
            with contextlib.suppress(ImportError):  # MLflow's own dependencies
                importlib.import_module(name)


def reach(config: Any) -> str:
    """The sweep's tracking URI, once its store answers: one line, at once, if it does not (MLflow's
    client would retry a server for minutes, a database for ~100 s). Writes nothing, so the sweep
    asks before it opens its study's storage."""
    from omegaconf import OmegaConf

    uri = tracking_uri(OmegaConf.select(config, "mlflow.tracking_uri", default=None))
    if uri.startswith(("http://", "https://")):
        try:
            ask_health(uri)
        except Exception as err:
            raise ConfigError(f"mlflow.tracking_uri={uri}: the MLflow server does not answer ({one_line(err)})") from None
    reach_database(uri)
    return uri


def connect(config: Any, uri: str, description: str | None) -> tuple[Any, str]:
    """(client, experiment id) of the sweep in the store at ``uri`` (as `reach` returned it): the
    experiment is created, described, if new."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        return client, get_or_create_experiment(client, experiment_name(config), description)
    except Exception as err:
        raise ConfigError(f"mlflow.tracking_uri={uri}: {one_line(err)}") from None
