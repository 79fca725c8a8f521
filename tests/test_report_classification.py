"""``python -m sweeper.report`` on classification: a real digits sweep optimising val_accuracy
(higher is better) read back from MLflow, and scripted runs logged without ``data.task``."""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper.report.build import PLOTS
from tests import components


def _epoch_values(client, run_id: str, key: str) -> list[float]:
    """The curve ``key`` as MLflow holds it: each step's first value (a run logs its final
    ``val_loss``/``val_accuracy`` once more at the last epoch, stamped later)."""
    values: dict[int, float] = {}
    for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
        values.setdefault(int(metric.step), float(metric.value))
    return [values[step] for step in sorted(values)]


def _stdout_rows(stdout: str) -> pd.DataFrame:
    """The stdout table (the lines after "top N by ..." up to the blank line) as strings."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("top ")) + 1
    end = lines.index("", start)
    header, *rows = (line.split() for line in lines[start:end])
    return pd.DataFrame(rows, columns=header)


@pytest.fixture
def digits_sweep(run_cli, run_module, mlflow_uri, optuna_url, workdir):
    """A real 4-trial digits sweep with ``objective=val_accuracy`` (15 epochs, one validation split:
    its val curve at the best epoch is its final val_log_loss) and its report."""
    proc = run_cli("-m", "data=digits", "objective=val_accuracy", "hydra.sweeper.n_trials=4", "train.epochs=15",
                   "split.folds=1", f"hydra.sweeper.storage={optuna_url}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent_id = re.search(r"MLflow parent run ([0-9a-f]{32})", proc.stdout + proc.stderr).group(1)
    out = workdir / "report"
    report = run_module("sweeper.report", "--sweep", parent_id, "--out", str(out), "--no-log")
    assert report.returncode == 0, report.stderr[-3000:]
    return {"uri": mlflow_uri, "parent": parent_id, "out": out, "stdout": report.stdout}


@pytest.mark.slow
def test_digits_report_shows_accuracy_ranks_by_val_accuracy_and_reads_cross_entropy_curves(digits_sweep, tmp_path):
    from mlflow import MlflowClient

    from sweeper.report.source import load_sweep
    from sweeper.report.task import CLASSIFICATION
    from sweeper.report.trials import build_trials

    client = MlflowClient(digits_sweep["uri"])
    children = client.search_runs([client.get_run(digits_sweep["parent"]).info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{digits_sweep['parent']}'")
    logged = {int(r.data.tags["sweeper.trial"]): r for r in children if r.data.tags["sweeper.state"] == "COMPLETE"}
    assert len(logged) >= 2

    # The terminal table: accuracy columns holding what MLflow stored, best val_accuracy first.
    table = _stdout_rows(digits_sweep["stdout"])
    assert list(table.columns[:4]) == ["trial", "state", "val_accuracy", "test_accuracy"]
    assert not any("rmse" in column for column in table.columns)
    assert "–" not in set(table["val_accuracy"]) | set(table["test_accuracy"])
    for _, row in table.iterrows():
        metrics = logged[int(row["trial"])].data.metrics
        assert row["val_accuracy"] == format(metrics["model_val_accuracy"], ".5g")
        assert row["test_accuracy"] == format(metrics["test_accuracy"], ".5g")
    shown = [logged[int(t)].data.metrics["model_val_accuracy"] for t in table["trial"]]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == max(r.data.metrics["model_val_accuracy"] for r in logged.values())
    best = int(table["trial"].iloc[0])
    assert f"The best trial (trial {best}) reached validation accuracy" in digits_sweep["stdout"]
    assert "val − train cross-entropy" in digits_sweep["stdout"]

    # trials.csv: the classifier's final metrics, val→test on log loss; no regression column.
    csv = pd.read_csv(digits_sweep["out"] / "trials.csv").set_index("trial")
    assert set(CLASSIFICATION.final_metrics) <= set(csv.columns) and "val_rmse" not in csv.columns
    for trial, run in logged.items():
        m = run.data.metrics
        assert csv.loc[trial, "val_accuracy"] == pytest.approx(m["model_val_accuracy"], rel=1e-12)
        assert csv.loc[trial, "val_test_gap"] == pytest.approx(
            (m["test_log_loss"] - m["val_log_loss"]) / m["val_log_loss"], rel=1e-9)

    # The curves analysed are the runs' cross-entropy histories: the restored best epoch's
    # val_loss and train_loss are the run's val_log_loss and train_log_loss.
    trials = build_trials(load_sweep(digits_sweep["uri"], sweep_id=digits_sweep["parent"]))
    assert trials.task is CLASSIFICATION and trials.objective == "val_accuracy" and trials.maximize
    assert list(trials.top(len(logged))["trial"]) == [int(t) for t in table["trial"]]
    for run in logged.values():
        run_id, m = run.info.run_id, run.data.metrics
        val, train = _epoch_values(client, run_id, "val_loss"), _epoch_values(client, run_id, "train_loss")
        assert trials.curves[run_id]["val_loss"] == val and trials.curves[run_id]["train_loss"] == train
        row = trials.frame.set_index("run_id").loc[run_id]
        assert row["best_epoch"] == int(np.argmin(val)) + 1 == m["best_epoch"]
        assert val[row["best_epoch"] - 1] == pytest.approx(m["val_log_loss"], rel=1e-9)
        assert train[row["best_epoch"] - 1] == pytest.approx(m["train_log_loss"], rel=1e-9)
        assert row["generalization_gap"] == pytest.approx(m["generalization_gap"], rel=1e-9)

    # The page names the direction, the cross-entropy and the val→test formula it used.
    page = (digits_sweep["out"] / "report.html").read_text(encoding="utf-8")
    assert "objective <code>val_accuracy</code> (maximised)" in page
    assert "(test_log_loss − val_log_loss) / val_log_loss" in page
    assert "val_accuracy, test_accuracy" in page and "cross-entropy per epoch" in page
    assert "rmse" not in page and "scaled target" not in page
    _assert_renders_in_chromium(digits_sweep["out"] / "report.html", tmp_path)


def _assert_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    """Every embedded plot decodes in headless Chromium (tests/test_report.py also screenshots the
    page). Without Chromium: a failure under CI, else a skip the run's last lines name."""
    chromium = components.chromium()
    check = ("<script>window.addEventListener('load', () => { const ok = [...document.images].filter("
             "i => i.complete && i.naturalWidth > 0).length; const p = document.createElement('p'); "
             "p.textContent = `decoded=${ok}`; document.body.appendChild(p); });</script>")
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text(encoding="utf-8").replace("</body>", check + "</body>"), encoding="utf-8")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                          checked.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"decoded={len(PLOTS)}" in dom.stdout, dom.stdout[-500:]


def _log_classifier_run(client, experiment_id: str, parent_id: str, trial: int, *, f1: float,
                        log_loss: tuple[float, float], data_task: bool) -> str:
    """A finished classification trial as ``sweeper.app`` logs one (``data.task`` optional): its
    curves, final metrics, ``best_epoch``, ``epochs_run`` and ``generalization_gap``."""
    from mlflow.entities import Metric, Param

    run_id = client.create_run(experiment_id, run_name=f"trial-{trial}",
                               tags={"mlflow.parentRunId": parent_id, "sweeper.trial": str(trial)}).info.run_id
    params = {"objective": "val_f1_macro", "train.epochs": "3", "train.early_stopping.patience": "None",
              "model.activation": "tanh" if trial % 2 else "relu"}
    if data_task:
        params["data.task"] = "classification"
    now = int(time.time() * 1000)
    curve = [1.2, 0.7, 0.5]
    metrics = [Metric(key, value * scale, now, epoch) for epoch, value in enumerate(curve, start=1)
               for key, scale in (("train_loss", 0.9), ("val_loss", 1.0), ("test_loss", 1.1))]
    final = {"val_f1_macro": f1, "test_f1_macro": f1 - 0.02, "val_accuracy": f1 + 0.01, "test_accuracy": f1 - 0.01,
             "val_log_loss": log_loss[0], "test_log_loss": log_loss[1],
             "best_epoch": 3, "epochs_run": 3, "generalization_gap": 0.5 - 0.9 * 0.5}
    metrics += [Metric(key, value, now, 0) for key, value in final.items()]
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()], metrics=metrics)
    client.set_tag(run_id, "sweeper.state", "COMPLETE")
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.mark.parametrize("data_task", [True, False], ids=["data.task logged", "metrics only"])
def test_classification_is_read_from_the_runs_and_higher_f1_ranks_first(mlflow_uri, mlflow_client, tmp_path,
                                                                       data_task):
    from sweeper.report.build import display_table, write_report
    from sweeper.report.findings import overall_findings
    from sweeper.report.source import load_sweep
    from sweeper.report.task import CLASSIFICATION
    from sweeper.report.trials import build_trials

    experiment_id = mlflow_client.create_experiment("scripted_classes")
    parent_id = mlflow_client.create_run(experiment_id, run_name="scripted",
                                         tags={"sweeper.study": "scripted"}).info.run_id
    f1s = [0.80, 0.95, 0.60]
    losses = [(0.5, 0.6), (0.2, 0.3), (1.0, 0.9)]
    runs = [_log_classifier_run(mlflow_client, experiment_id, parent_id, trial, f1=f1, log_loss=loss,
                                data_task=data_task) for trial, (f1, loss) in enumerate(zip(f1s, losses))]
    mlflow_client.set_terminated(parent_id)

    trials = build_trials(load_sweep(mlflow_uri, sweep_id=parent_id))
    assert trials.task is CLASSIFICATION and trials.maximize
    assert list(trials.top(3)["run_id"]) == [runs[1], runs[0], runs[2]]  # 0.95, 0.80, 0.60
    frame = trials.frame.set_index("run_id")
    assert frame.loc[runs[1], "val_test_gap"] == pytest.approx((0.3 - 0.2) / 0.2)
    assert frame.loc[runs[2], "val_test_gap"] == pytest.approx((0.9 - 1.0) / 1.0)
    assert math.isnan(frame.loc[runs[0], "train_roc_auc"])  # not logged: empty, not made up

    shown = display_table(trials, trials.top(3), knobs=False)
    assert list(shown.columns[2:5]) == ["val_f1_macro", "val_accuracy", "test_accuracy"]
    assert list(shown["val_f1_macro"]) == ["0.95", "0.8", "0.6"]
    assert list(shown["test_accuracy"]) == ["0.94", "0.79", "0.59"]
    sentences = overall_findings(trials)
    assert "The best trial (trial 1) reached validation macro F1 0.95 at epoch 3 of 3." in sentences
    # The best trial's log loss is 50% worse on test, the others' a median 5%: selection flattered it.
    assert ("Selecting on validation flattered the best trial (trial 1): its test log loss is +50.0% against its "
            "validation log loss, where the 2 other finished trials' median is +5.0%.") in sentences
    assert "On accuracy: a median 0.81 on validation and 0.79 on test (3 of 3 finished trials did worse on test)." \
        in sentences

    report = write_report(trials, tmp_path / "report", k=3)
    assert "val→test = (test − val) / val log loss" in report.table
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "objective <code>val_f1_macro</code> (maximised)" in html
    assert frame.loc[runs[1], "generalization_gap"] == pytest.approx(0.05)  # as logged
