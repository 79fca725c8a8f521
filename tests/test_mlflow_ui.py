"""The links a sweep's summary prints open the right MLflow UI pages, in a real browser.

A sweep runs from the folder its store is in; the summary's ``mlflow ui`` command is started as
printed (on a free port instead of 5000) and headless Chromium loads each printed link: the runs
table lists the trials by name, sorted by the objective, and the parent run's link opens its page.
MLflow 3 opens an experiment on its GenAI overview unless the address says otherwise.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeper.tracking.store import ui_links

from . import components
from .servers import MlflowServer


class PrintedUi(MlflowServer):
    """The summary's ``mlflow ui`` command, run in the sweep's folder on a free loopback port."""

    def __init__(self, printed: str, folder: Path) -> None:
        super().__init__("", folder / "ui-artifacts")
        self.printed = printed

    def command(self) -> list[str]:
        words = shlex.split(self.printed)
        assert words[:2] == ["mlflow", "ui"], self.printed
        return [sys.executable, "-m", "mlflow", *words[1:], "--host", "127.0.0.1", "--port", str(self.port)]


def page_text(url: str, profile: Path) -> str:
    """What a user reads on ``url`` once its scripts have run: the DOM's text, tags removed."""
    dom = subprocess.run(
        [components.chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom.stdout, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_the_summarys_links_open_the_trials_and_the_sweep_in_the_mlflow_ui(run_cli, tmp_path, mlflow_uri):
    components.chromium()  # before the sweep: a missing browser fails (CI) or skips at once
    proc = run_cli("-m", "search=small", "hydra.sweeper.n_trials=3", "train.epochs=2",
                   f"hydra.sweeper.storage={tmp_path / 'mlruns' / 'optuna.log'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr
    command = re.search(r"MLflow UI:  (mlflow ui --backend-store-uri \S+)   then open\n.*?(http://\S+)", output)
    parent_link = re.search(r"the sweep:  (http://\S+)", output)
    assert command and parent_link, output
    assert command.group(1) == "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db"  # relative to where it ran

    client = MlflowClient(mlflow_uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "car_prices"]
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if "sweeper.study" in r.data.tags]
    trials = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                    key=lambda r: r.data.metrics["val_rmse"])
    assert len(trials) == 3

    server = PrintedUi(command.group(1), tmp_path).start()
    try:
        address = f"http://127.0.0.1:{server.port}"
        runs_page = page_text(command.group(2).replace("http://127.0.0.1:5000", address), tmp_path / "profile")
        assert "Run Name" in runs_page and "Sort: val_rmse" in runs_page, runs_page[-3000:]
        names = [t.info.run_name for t in trials]
        positions = [runs_page.find(f" {name} ") for name in names]
        assert all(p >= 0 for p in positions) and positions == sorted(positions), (names, runs_page[-3000:])

        parent_page = page_text(parent_link.group(1).replace("http://127.0.0.1:5000", address), tmp_path / "profile2")
        assert parent.info.run_name in parent_page and parent.info.run_id in parent_page, parent_page[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("uri, command, base", [
    ("sqlite:////elsewhere/mlruns/mlflow.db", "mlflow ui --backend-store-uri sqlite:////elsewhere/mlruns/mlflow.db",
     "http://127.0.0.1:5000"),
    ("http://user:secret@tracking.example:5000/", None, "http://tracking.example:5000"),
    ("https://tracking.example/mlflow", None, "https://tracking.example/mlflow"),
])
def test_ui_links_for_a_local_store_and_a_server(uri, command, base):
    got = ui_links(uri, "7", "abc", "val_accuracy", ascending=False)
    assert got == (command, f"{base}/#/experiments/7/runs?workflowType=machine_learning"
                            f"&orderByKey=metrics.%60val_accuracy%60&orderByAsc=false", f"{base}/#/experiments/7/runs/abc")
    assert "secret" not in str(got)
