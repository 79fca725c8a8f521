"""The Hydra task function: config -> data -> network -> trainer -> MLflow.

``main`` (``entry.py``) is what ``python -m sweeper`` (and every job of a ``-m`` sweep) runs:
the Hydra entry and the terminal's lines. ``run`` (``job.py``) is its body, callable with any
composed config (``sweeper.rerun`` and tests use it directly). ``preflight`` (``preflight.py``)
is the sweep's one check before its first trial; ``artifacts.py`` writes what a run leaves.

Order matters for "nothing half-written in MLflow": the config is validated and the CSV loaded
before the MLflow run exists; once it exists, every way out ends it (FINISHED, FAILED or KILLED).
"""

from sweeper.app.artifacts import log_run_model
from sweeper.app.entry import CONFIG_DIR, format_result, main
from sweeper.app.job import COMPLETE, FAIL, PRUNED, SPLITS, load_data, network_targets, run
from sweeper.app.preflight import preflight
