"""MLflow side of a run: the store, the experiment, and what one run logs.

Importing this package does not import MLflow; the functions that need it import it lazily.
"""

import os

# Downloading a run's artifacts draws a progress bar per file on stderr: not for our commands.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from sweeper.tracking.store import (
    DEFAULT_TRACKING_URI,
    artifact_root,
    existing_store,
    experiment_name,
    get_or_create_experiment,
    tracking_uri,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "artifact_root",
    "existing_store",
    "experiment_name",
    "get_or_create_experiment",
    "tracking_uri",
]
