"""A sweep's parameter importances as its parent run logged them (``sweeper.tracking.importances``)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sweeper.tracking.importances import JSON, PNG


def download(info: dict[str, Any], json_path: Path, png_path: Path) -> str | None:
    """Copy the sweep's logged importances (``JSON`` and ``PNG`` of its parent run) to
    ``json_path`` and ``png_path``; returns None, or why there are none (a single run; a parent
    that has not logged them: a sweep still running, or one from an older sweeper)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if info.get("single"):
        return f"run {info['sweep_id']} is a single run, not a sweep: importances rank a sweep's knobs."
    client = MlflowClient(tracking_uri=info["tracking_uri"])
    try:
        logged = {a.path for a in client.list_artifacts(info["sweep_id"])}
        if not {JSON, PNG} <= logged:
            return (f"the sweep's parent run has no {JSON} and {PNG}: it logs them when the sweep ends "
                    "(a sweep still running, or one run by an older sweeper, has none).")
        with tempfile.TemporaryDirectory(prefix="sweeper-report-") as tmp:
            values = json.loads(Path(client.download_artifacts(info["sweep_id"], JSON, tmp)).read_text())
            shutil.copyfile(client.download_artifacts(info["sweep_id"], PNG, tmp), png_path)
    except (MlflowException, OSError, ValueError) as error:
        return f"the parent run's {JSON} could not be read: {str(error).splitlines()[0] if str(error) else error!r}"
    json_path.write_text(json.dumps(values, indent=2) + "\n")
    return None
