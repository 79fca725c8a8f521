"""Every config choice reaches the network: its param is logged and its loss curve changes.

In-process (``sweeper.app.run`` on configs composed by Hydra's compose API) to keep the many
runs fast; the CLI path itself is covered by test_run.py. A wrongly wired key would show up
here as a curve identical to the default run's.
"""

from __future__ import annotations

import math

import pytest

from sweeper.app import run

from .curves import epoch_values

EPOCHS = 6
BASE = [f"train.epochs={EPOCHS}", "train.early_stopping.patience=null"]

#: (overrides, the params they must log). Schedule keys are set so each schedule's rate
#: changes within EPOCHS epochs (e.g. step_size=2), otherwise it would equal constant.
CHOICES = [
    (["model.activation=identity"], {"model.activation": "identity"}),
    (["model.activation=sigmoid"], {"model.activation": "sigmoid"}),
    (["model.activation=tanh"], {"model.activation": "tanh"}),
    (["model.activation=leaky_relu", "model.leaky_slope=0.2"], {"model.activation": "leaky_relu", "model.leaky_slope": "0.2"}),
    (["model.activation=elu"], {"model.activation": "elu"}),
    (["model.output_activation=tanh"], {"model.output_activation": "tanh"}),
    (["model.output_activation=sigmoid", "data.target_scaling=minmax"], {"model.output_activation": "sigmoid", "data.target_scaling": "minmax"}),
    (["model.init=xavier"], {"model.init": "xavier"}),
    (["model.init=lecun"], {"model.init": "lecun"}),
    (["model.init=normal"], {"model.init": "normal"}),
    (["model.hidden=[16]"], {"model.hidden": "[16]"}),
    (["model.hidden=[]"], {"model.hidden": "[]"}),
    (["model.dtype=float32"], {"model.dtype": "float32"}),
    (["regularization.dropout=0.2"], {"regularization.dropout": "0.2"}),
    (["regularization.l1=0.001"], {"regularization.l1": "0.001"}),
    (["regularization.l2=0.01"], {"regularization.l2": "0.01"}),
    (["regularization.max_norm=0.5"], {"regularization.max_norm": "0.5"}),
    (["optimizer.nesterov=true"], {"optimizer.nesterov": "True"}),
    (["optimizer.momentum=0.5"], {"optimizer.momentum": "0.5"}),
    (["optimizer.lr=0.003"], {"optimizer.lr": "0.003"}),
    (["train.batch_size=null"], {"train.batch_size": "None"}),
    (["train.batch_size=64"], {"train.batch_size": "64"}),
    (["schedule=step", "schedule.step_size=2"], {"schedule.name": "step", "schedule.step_size": "2"}),
    (["schedule=exponential", "schedule.gamma=0.7"], {"schedule.name": "exponential", "schedule.gamma": "0.7"}),
    (["schedule=inverse_time", "schedule.decay=0.5"], {"schedule.name": "inverse_time", "schedule.decay": "0.5"}),
    (["schedule=cosine", "schedule.period=4"], {"schedule.name": "cosine", "schedule.period": "4"}),
    (["schedule=cosine", "schedule.period=2", "schedule.warm_restarts=true"], {"schedule.warm_restarts": "True"}),
    (["schedule=warmup_cosine", "schedule.warmup=3"], {"schedule.name": "warmup_cosine", "schedule.warmup": "3"}),
    (["schedule=plateau", "schedule.patience=1", "schedule.min_delta=1"], {"schedule.name": "plateau", "schedule.patience": "1"}),
    (["seed=7"], {"seed": "7", "split.seed": "7"}),
    (["split.seed=3"], {"split.seed": "3", "seed": "0"}),
    (["split.shuffle=false"], {"split.shuffle": "False"}),
    (["split.test_size=0.3"], {"split.test_size": "0.3"}),
    (["data.target_scaling=none", "optimizer.lr=1e-9"], {"data.target_scaling": "none"}),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db):
    import shutil

    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("choices")
    shutil.copyfile(empty_mlflow_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def train(compose, store, *overrides):
    uri, client = store
    result = run(compose(*BASE, f"mlflow.tracking_uri={uri}", *overrides))
    mlflow_run = client.get_run(result["run_id"])
    curves = {
        key: [value for _, value in sorted(epoch_values(client, result["run_id"], key).items())]
        for key in ("train_loss", "val_loss", "lr")
    }
    return result, mlflow_run, curves


@pytest.fixture(scope="module")
def default_run(store):
    from hydra import compose as hydra_compose, initialize_config_dir

    from sweeper.app import CONFIG_DIR

    def compose(*overrides):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))

    return train(compose, store)


@pytest.mark.parametrize("overrides, params", CHOICES, ids=[" ".join(o) for o, _ in CHOICES])
def test_choice_is_logged_and_changes_the_loss_curve(compose, store, default_run, overrides, params):
    result, mlflow_run, curves = train(compose, store, *overrides)
    assert result["state"] == "COMPLETE", result["reason"]
    for key, value in params.items():
        assert mlflow_run.data.params[key] == value, key
    assert len(curves["train_loss"]) == EPOCHS
    _, _, default_curves = default_run
    assert curves["train_loss"] != default_curves["train_loss"]
    assert curves["val_loss"] != default_curves["val_loss"]
    if overrides[0].startswith("schedule="):
        assert curves["lr"] != default_curves["lr"]


def test_same_config_gives_the_same_curves(compose, store, default_run):
    _, _, again = train(compose, store)
    assert again == default_run[2]


def test_diverging_run_ends_failed_with_the_reason_as_a_tag(compose, store):
    result, mlflow_run, curves = train(compose, store, "optimizer.lr=50", "optimizer.momentum=0.99")
    assert result["state"] == "FAIL"
    assert "nan" in result["reason"].lower() or "inf" in result["reason"].lower()
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["sweeper.state"] == "FAIL"
    assert mlflow_run.data.tags["sweeper.fail_reason"] == result["reason"]
    assert not math.isfinite(curves["train_loss"][-1])


def test_collapsing_run_ends_failed_with_the_reason_as_a_tag(compose, store):
    """lr 0.3 with momentum 0.9 kills every ReLU of the second layer in the first epoch: a
    finite loss, a constant output, a clear FAIL, whatever early stopping would restore."""
    result, mlflow_run, curves = train(compose, store, "model.hidden=[32,16]", "optimizer.lr=0.3",
                                       "train.early_stopping.patience=5", "split.folds=1")
    assert result["state"] == "FAIL"
    assert result["reason"] == ("the network's output collapsed to a constant at epoch 1 "
                                "(every hidden unit of layer 2 dead; lr=0.3)")
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["sweeper.state"] == "FAIL"
    assert mlflow_run.data.tags["sweeper.train_status"] == "collapsed"
    assert mlflow_run.data.tags["sweeper.fail_reason"] == result["reason"]
    assert all(math.isfinite(loss) for loss in curves["train_loss"]) and len(curves["train_loss"]) == 1
    assert "val_rmse" not in mlflow_run.data.metrics  # a constant's metrics mean nothing, as a diverged run's


def test_early_stopping_stops_and_records_the_best_epoch(compose, store):
    result, mlflow_run, curves = train(compose, store, "train.epochs=300", "train.early_stopping.patience=3",
                                       "optimizer.lr=0.05")
    metrics = mlflow_run.data.metrics
    assert metrics["epochs_run"] < 300 and metrics["epochs_run"] == metrics["best_epoch"] + 3
    assert mlflow_run.data.tags["sweeper.train_status"] == "early_stopped"
    best = int(metrics["best_epoch"]) - 1
    assert metrics["generalization_gap"] == pytest.approx(curves["val_loss"][best] - curves["train_loss"][best])
    assert result["metrics"]["val_rmse"] == metrics["val_rmse"]
