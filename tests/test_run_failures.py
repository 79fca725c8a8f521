"""How a run ends when it is an Optuna trial, is pruned, raises or is interrupted.

In-process with a stand-in for ``sweeper.sweep.trial_link.current()`` (the contract with the
sweeper: ``trial_number``, ``parent_run_id``, ``report(epoch, value) -> bool``).
"""

from __future__ import annotations

import pytest

import sweeper.app.job as app  # the run's body and its steps

from .curves import epoch_values

EPOCHS = ["train.epochs=12", "train.early_stopping.patience=null"]


class FakeTrial:
    """Asks to stop after ``prune_at`` epochs and remembers every reported value."""

    def __init__(self, parent_run_id: str, prune_at: int | None) -> None:
        self.trial_number = 4
        self.parent_run_id = parent_run_id
        self.prune_at = prune_at
        self.reports: list[tuple[int, float]] = []

    def report(self, epoch: int, value: float) -> bool:
        self.reports.append((epoch, value))
        return self.prune_at is not None and epoch >= self.prune_at


@pytest.fixture
def parent(mlflow_client):
    from sweeper.tracking import get_or_create_experiment

    experiment_id = get_or_create_experiment(mlflow_client, "car_prices")
    return mlflow_client.create_run(experiment_id, run_name="sweep").info.run_id


@pytest.mark.parametrize("objective", ["val_rmse", "val_r2", "val_loss"])
def test_a_pruned_trial_is_a_finished_child_run_with_partial_curves(
    compose, mlflow_uri, mlflow_client, parent, monkeypatch, objective
):
    trial = FakeTrial(parent, prune_at=5)
    monkeypatch.setattr(app, "_trial_link", lambda: trial)
    result = app.run(compose(*EPOCHS, f"mlflow.tracking_uri={mlflow_uri}", f"objective={objective}",
                             "train.early_stopping.patience=100", "optimizer.lr=0.002", "split.folds=1"))
    assert result["state"] == "PRUNED" and result["objective"] == objective
    run = mlflow_client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["sweeper.state"] == "PRUNED"
    assert run.info.run_name == "trial-4 (pruned @5)"  # told apart from a complete run by its name
    assert run.data.tags["sweeper.trial"] == "4"
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.metrics["epochs_run"] == 5
    assert sorted(epoch_values(mlflow_client, result["run_id"], "val_loss")) == [1, 2, 3, 4, 5]
    assert [epoch for epoch, _ in trial.reports] == [1, 2, 3, 4, 5]
    # The reported value is the objective in original units: the final metrics come from the
    # restored best epoch's weights, so the value reported at that epoch is the final one.
    best_epoch = int(run.data.metrics["best_epoch"])
    assert 1 <= best_epoch <= 5
    assert trial.reports[best_epoch - 1][1] == pytest.approx(result["metrics"][objective], rel=1e-9)


def test_a_trial_that_is_not_pruned_completes(compose, mlflow_uri, mlflow_client, parent, monkeypatch):
    trial = FakeTrial(parent, prune_at=None)
    monkeypatch.setattr(app, "_trial_link", lambda: trial)
    result = app.run(compose(*EPOCHS, f"mlflow.tracking_uri={mlflow_uri}"))
    assert result["state"] == "COMPLETE" and result["reason"] is None
    assert len(trial.reports) == 12
    assert set(result["metrics"]) >= {"val_rmse", "test_r2", "generalization_gap", "train_seconds"}
    run = mlflow_client.get_run(result["run_id"])
    assert run.data.tags["sweeper.state"] == "COMPLETE" and run.info.status == "FINISHED"


def _artifacts(client, run) -> set[str]:
    return {a.path for a in client.list_artifacts(run.info.run_id)}


def test_an_error_after_the_run_started_ends_it_failed_keeps_its_record_and_propagates(
        compose, mlflow_uri, mlflow_client, monkeypatch):
    import sweeper.tracking.model_file as model_file

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_file, "save_model", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        app.run(compose(*EPOCHS, f"mlflow.tracking_uri={mlflow_uri}"))
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("car_prices").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["sweeper.state"] == "FAIL"
    assert "disk full" in run.data.tags["sweeper.fail_reason"]
    assert {"config.yaml", "data.json"} <= _artifacts(mlflow_client, run)  # enough to rerun it


def test_a_plot_that_cannot_be_drawn_costs_only_the_picture(compose, mlflow_uri, mlflow_client, monkeypatch, capsys):
    import sweeper.tracking.plots as plots

    def broken_plot(*args, **kwargs):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(plots, "plot_loss_curves", broken_plot)
    result = app.run(compose(*EPOCHS, f"mlflow.tracking_uri={mlflow_uri}"))
    assert result["state"] == "COMPLETE"
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("car_prices").experiment_id])
    assert {"config.yaml", "data.json", "model.npz"} <= _artifacts(mlflow_client, run)
    assert "loss_curves.png" not in _artifacts(mlflow_client, run)
    assert "warning: loss_curves.png not drawn: OverflowError: cannot convert float infinity" in capsys.readouterr().err


def test_keyboard_interrupt_ends_the_run_killed_and_is_re_raised(compose, mlflow_uri, mlflow_client, monkeypatch):
    def interrupt(log):
        if log.epoch == 3:
            raise KeyboardInterrupt

    original = app._CurveLogger.__call__

    def logger_then_interrupt(self, log):
        original(self, log)
        interrupt(log)
        return False

    monkeypatch.setattr(app._CurveLogger, "__call__", logger_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        app.run(compose(*EPOCHS, f"mlflow.tracking_uri={mlflow_uri}"))
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("car_prices").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["sweeper.state"] == "FAIL"
    assert len(mlflow_client.get_metric_history(run.info.run_id, "train_loss")) == 3  # buffer flushed
    assert {"config.yaml", "data.json"} <= _artifacts(mlflow_client, run)


def test_outside_a_sweep_there_is_no_trial_link():
    assert app._trial_link() is None
