"""``python -m sweeper.rerun RUN_ID [--check]``: a logged run trains again to the same numbers."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest

from sweeper import PROJECT_ROOT
from sweeper.rerun import differing_metrics

pytestmark = pytest.mark.slow


def test_rerun_check_reproduces_a_run_and_refuses_a_changed_csv(run_cli, run_module, mlflow_client, workdir):
    shutil.copyfile(PROJECT_ROOT / "data" / "car_prices.csv", workdir / "cars.csv")
    proc = run_cli("data=csv", "data.path=cars.csv", "data.target=Price", "train.epochs=20",
                   "regularization.dropout=0.1", "schedule=cosine", "schedule.period=10")
    assert proc.returncode == 0, proc.stderr
    [original] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("cars").experiment_id])

    check = run_module("sweeper.rerun", original.info.run_id, "--check")
    assert check.returncode == 0, check.stderr
    assert "check passed" in check.stdout
    runs = mlflow_client.search_runs([original.info.experiment_id])
    [again] = [r for r in runs if r.info.run_id != original.info.run_id]
    assert again.data.tags["sweeper.rerun_of"] == original.info.run_id
    assert again.info.status == "FINISHED"
    for name, value in original.data.metrics.items():
        if name != "train_seconds":
            assert again.data.metrics[name] == value, name  # bit for bit in float64

    frame = pd.read_csv(workdir / "cars.csv")
    frame.loc[100, "Mileage"] += 1
    frame.to_csv(workdir / "cars.csv", index=False)
    changed = run_module("sweeper.rerun", original.info.run_id, "--check")
    assert changed.returncode == 1
    [line] = [line for line in changed.stderr.splitlines() if line.strip()]
    assert "cars.csv" in line and "changed" in line and original.info.run_id in line
    refused = run_module("sweeper.rerun", original.info.run_id)
    assert refused.returncode == 2 and "changed" in refused.stderr
    assert len(mlflow_client.search_runs([original.info.experiment_id])) == 2  # nothing new logged


def test_rerun_of_an_unknown_run_exits_2_with_one_line(run_module):
    proc = run_module("sweeper.rerun", "0123456789abcdef0123456789abcdef")
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.strip() and "INFO" not in line] == [
        line for line in proc.stderr.splitlines() if "not found" in line
    ]


def test_differing_metrics_names_every_metric_that_changed_but_ignores_train_seconds():
    original = {"test_rmse": 1.0, "val_r2": 0.9, "train_seconds": 3.0, "best_epoch": 5.0, "gap": math.nan}
    assert differing_metrics(original, dict(original, train_seconds=9.0)) == []
    assert differing_metrics(original, dict(original, test_rmse=1.0 + 1e-15, best_epoch=6.0)) == ["best_epoch", "test_rmse"]
    assert differing_metrics(original, {k: v for k, v in original.items() if k != "val_r2"}) == ["val_r2"]
    assert differing_metrics(original, dict(original, test_rmse=1.0 + 1e-15), rtol=1e-12) == []


@pytest.mark.parametrize("diverging", [
    ["model.hidden=[32,16]", "optimizer.momentum=0.9", "optimizer.lr=50"],
    # Finite runaway (1e49 after one epoch): once the val_rmse 1e47 a pruner was told.
    ["optimizer.lr=0.143", "optimizer.momentum=0.93", "optimizer.nesterov=true", "train.batch_size=16"],
], ids=["lr 50", "lr 0.143 nesterov 0.93 batch 16"])
def test_a_diverged_run_fails_with_its_reason_and_check_passes_only_for_the_same_failure(
        run_cli, run_module, mlflow_client, diverging):
    proc = run_cli("model.activation=tanh", *diverging, "train.epochs=30", "split.folds=1")  # one network's reason
    assert proc.returncode == 1
    assert "error: the run FAILED: train_loss" in proc.stderr and "exceeded divergence_factor 10000" in proc.stderr
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("car_prices").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["sweeper.state"] == "FAIL"
    assert run.data.tags["sweeper.fail_reason"].startswith("train_loss")
    artifacts = {a.path for a in mlflow_client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "data.json", "loss_curves.png"} <= artifacts and "model.npz" not in artifacts
    assert set(run.data.metrics) >= {"best_epoch", "epochs_run"}
    assert not {"generalization_gap", "test_rmse", "val_rmse"} & set(run.data.metrics)  # no numbers of a blown-up net

    check = run_module("sweeper.rerun", run.info.run_id, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout and "and its end (FAIL: train_loss" in check.stdout

    mlflow_client.set_tag(run.info.run_id, "sweeper.fail_reason", "train_loss became nan at epoch 3 (lr=0.5)")
    changed = run_module("sweeper.rerun", run.info.run_id, "--check")
    assert changed.returncode == 1
    assert "ended differently" in changed.stderr and "fail reason" in changed.stderr
