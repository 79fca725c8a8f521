"""Cross-validated trials (``split.folds=K``): folds, lockstep training, the bag, the ensemble."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sweeper import PROJECT_ROOT
from sweeper.config import load_data
from sweeper.data import fold_numbers, load_dataset
from sweeper.errors import ConfigError, DataError
from sweeper.nn import SGD, Bag, Network
from sweeper.tracking.model_file import (load_members, load_model, predict, predict_members, save_ensemble,
                                         save_model)
from sweeper.train import EarlyStopping, fit, fit_folds, rmse

from .curves import epoch_values
from .test_sweep_cli import load_study, ok, parent_and_children, sweep_args

CAR_PRICES = PROJECT_ROOT / "data" / "car_prices.csv"


# ---------------------------------------------------------------------- folds of the rows
@pytest.mark.parametrize("n, k", [(643, 5), (10, 3), (7, 7)])
def test_folds_deal_every_row_once_and_differ_in_size_by_at_most_one(n, k):
    folds = fold_numbers(n, k, seed=3)
    sizes = np.bincount(folds, minlength=k)
    assert sorted(set(folds)) == list(range(k)) and sizes.sum() == n and sizes.max() - sizes.min() <= 1
    assert np.array_equal(folds, fold_numbers(n, k, seed=3)) and not np.array_equal(folds, fold_numbers(n, k, seed=4))


def test_stratified_folds_keep_each_class_within_one_row_across_folds():
    rng = np.random.default_rng(0)
    codes = rng.choice(3, size=101, p=[0.6, 0.3, 0.1])
    folds = fold_numbers(len(codes), 4, seed=1, stratify=codes)
    for c in range(3):
        per_fold = np.bincount(folds[codes == c], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)


def test_a_cross_validated_dataset_pools_train_and_validation_rows_and_keeps_the_test_rows():
    single = load_dataset(CAR_PRICES, "Price", seed=2)
    folded = load_dataset(CAR_PRICES, "Price", seed=2, folds=5)
    assert np.array_equal(folded.indices["test"], single.indices["test"])
    assert sorted(folded.indices["train"]) == sorted(np.concatenate([single.indices["train"], single.indices["val"]]))
    assert folded.rows == {"train": 643, "val": 0, "test": 161} and folded.folds == 5 and single.folds == 1
    assert np.bincount(folded.fold_of).tolist() == [129, 129, 129, 128, 128]
    assert "5-fold cross-validation over 643 train + validation rows, 161 test rows" in folded.summary()[0]


def test_auto_folds_cross_validate_small_tables_only():
    assert load_dataset(CAR_PRICES, "Price", folds="auto").folds == 5
    from sweeper.data.split import resolve_folds
    assert resolve_folds("auto", 1999) == 5 and resolve_folds("auto", 2000) == 1


@pytest.mark.parametrize("folds", [0, -2, 2.5, True, "five"])
def test_a_bad_folds_value_is_one_line_naming_the_key(folds):
    with pytest.raises(ConfigError, match=r"^split\.folds: .* allowed: auto or an integer >= 1"):
        load_dataset(CAR_PRICES, "Price", folds=folds)


def test_more_folds_than_rows_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": range(10), "y": range(10)}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"^split\.folds=9: only 8 train \+ validation rows"):
        load_dataset(path, "y", folds=9)


# ---------------------------------------------------------------------- lockstep training
def _problem(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=n)).reshape(-1, 1)


def _net(seed: int) -> Network:
    return Network([3, 5, 1], activation="tanh", seed=seed)


def test_networks_trained_in_lockstep_are_each_the_network_fit_trains_alone():
    """Two folds on the same rows with the same seeds: each network ends bit for bit as `fit`'s,
    the mean curve is its curve and the spread over folds is 0."""
    X, y = _problem(0)
    sets = {"val": _problem(1, 20), "test": _problem(2, 20)}
    alone = _net(0)
    single = fit(alone, X, y, epochs=12, batch_size=16, optimizer=SGD(alone.params(), momentum=0.9),
                 eval_sets=sets, seed=5)
    nets = [_net(0), _net(0)]
    both = fit_folds(nets, [(X, y, sets)] * 2, epochs=12, batch_size=16,
                     optimizers=[SGD(n.params(), momentum=0.9) for n in nets], seeds=[5, 5])
    for net in nets:
        assert all(np.array_equal(a, b) for a, b in zip(net.weights + net.biases, alone.weights + alone.biases))
    assert both.history["val_loss"] == single.history["val_loss"] and both.best_epoch == single.best_epoch
    assert both.history["val_loss_std"] == [0.0] * 12 and "val_loss_std" not in single.history


def test_lockstep_early_stopping_follows_the_mean_and_restores_every_network_to_its_best_epoch():
    X, y = _problem(0, 90)
    folds = np.arange(90) % 3
    data = [(X[folds != k], y[folds != k], {"val": (X[folds == k], y[folds == k])}) for k in range(3)]
    nets = [_net(k) for k in range(3)]
    stopping = EarlyStopping(patience=3)
    result = fit_folds(nets, data, epochs=300, batch_size=8, schedule=None, early_stopping=stopping,
                       optimizers=[SGD(n.params(), momentum=0.9) for n in nets], seeds=[0, 1, 2])
    curve = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(curve)) + 1 < result.epochs_run
    restored = [net.data_loss(net.forward(Xv), yv) for net, (_, _, sets) in zip(nets, data) for Xv, yv in [sets["val"]]]
    assert np.mean(restored) == pytest.approx(curve[result.best_epoch - 1], rel=1e-12)
    assert np.std(restored) == pytest.approx(result.history["val_loss_std"][result.best_epoch - 1], rel=1e-9)


def test_one_fold_diverging_fails_the_run_naming_its_fold():
    X, y = _problem(0)
    # Inputs 30 times larger: a step of lr 0.01 on a linear model overshoots ever more.
    data = [(X, y, {"val": _problem(1, 20)}), (30 * X, y, {"val": _problem(1, 20)})]
    nets = [Network([3, 1], seed=0), Network([3, 1], seed=1)]
    result = fit_folds(nets, data, epochs=20, optimizers=[SGD(n.params()) for n in nets],
                       schedule=None, divergence_factor=10.0)
    assert result.status == "diverged" and result.reason.startswith("fold 2: train_loss ")


# ---------------------------------------------------------------------- the bag and the ensemble
def test_a_bag_predicts_its_networks_mean_and_model_npz_keeps_all_of_them(tmp_path):
    dataset = load_dataset(CAR_PRICES, "Price", seed=0, folds=3)
    nets = [Network([dataset.n_inputs, 4, 1], activation="relu", seed=k) for k in range(3)]
    bag = Bag(nets)
    X = dataset.X_test
    assert np.allclose(bag.forward(X), (nets[0].forward(X) + nets[1].forward(X) + nets[2].forward(X)) / 3,
                       rtol=1e-15, atol=0)
    save_model(tmp_path / "model.npz", bag, dataset.preprocessor, OmegaConf.create(
        {"activation": "relu", "output_activation": "identity", "init": "he", "dtype": "float64",
         "leaky_slope": 0.01, "elu_alpha": 1.0}))
    loaded, preprocessor = load_model(tmp_path / "model.npz")
    assert isinstance(loaded, Bag) and len(loaded.members) == 3
    assert np.array_equal(loaded.forward(X), bag.forward(X))
    with pytest.raises(ValueError, match="a bag's networks must match"):
        Bag([nets[0], Network([dataset.n_inputs, 5, 1], seed=0)])


def test_an_ensemble_file_predicts_the_mean_of_its_members_in_original_units(tmp_path):
    dataset = load_dataset(CAR_PRICES, "Price", seed=0)
    rows = pd.read_csv(CAR_PRICES).head(20)
    files, alone = [], []
    for k, hidden in enumerate([3, 6]):
        net = Network([dataset.n_inputs, hidden, 1], activation="tanh", seed=k)
        path = tmp_path / f"m{k}.npz"
        save_model(path, net, dataset.preprocessor, OmegaConf.create(
            {"activation": "tanh", "output_activation": "identity", "init": "he", "dtype": "float64",
             "leaky_slope": 0.01, "elu_alpha": 1.0}))
        files.append(path)
        alone.append(predict(net, dataset.preprocessor, rows))
    save_ensemble(tmp_path / "ensemble.npz", files)
    members = load_members(tmp_path / "ensemble.npz")
    assert len(members) == 2 and len(load_members(files[0])) == 1
    assert np.allclose(predict_members(members, rows), (alone[0] + alone[1]) / 2, rtol=1e-14, atol=0)


# ---------------------------------------------------------------------- end to end
def test_a_cross_validated_run_logs_fold_means_and_out_of_fold_metrics_and_reruns_exactly(
        run_cli, run_module, mlflow_client, tmp_path):
    ok(run_cli("split.folds=3", "train.epochs=15", "model.hidden=[8]"))
    (run,) = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("car_prices").experiment_id])
    run_id, metrics = run.info.run_id, run.data.metrics
    assert run.data.params["split.folds"] == "3"
    assert len(epoch_values(mlflow_client, run_id, "val_loss_std")) == metrics["epochs_run"]

    # Recomputed from the logged bag: val is out of fold, test is the bag's mean prediction.
    folder = tmp_path / "artifacts"
    folder.mkdir()
    bag, _ = load_model(mlflow_client.download_artifacts(run_id, "model.npz", str(folder)))
    cfg = OmegaConf.load(mlflow_client.download_artifacts(run_id, "config.yaml", str(folder)))
    dataset = load_data(cfg)
    inverse = dataset.preprocessor.inverse_target
    oof = np.empty_like(dataset.y_train)
    for k, net in enumerate(bag.members):
        oof[dataset.fold_of == k] = net.forward(dataset.X_train[dataset.fold_of == k])
    assert metrics["val_rmse"] == pytest.approx(rmse(inverse(dataset.y_train), inverse(oof)), rel=1e-12)
    assert metrics["test_rmse"] == pytest.approx(rmse(inverse(dataset.y_test), inverse(bag.forward(dataset.X_test))),
                                                 rel=1e-12)
    assert metrics["val_rmse"] != pytest.approx(rmse(inverse(dataset.y_train), inverse(bag.forward(dataset.X_train))))

    check = run_module("sweeper.rerun", run_id, "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_cross_validated_sweep_prunes_on_the_fold_mean_and_its_parent_model_is_the_top_trials_mean(
        run_cli, optuna_url, mlflow_uri, mlflow_client, tmp_path):
    """lr over five decades with 3 folds: the median pruner stops slow trials on the folds' mean
    curve; the parent's model averages the top 3 trials, and its logged test metrics are what
    that model predicts for the test rows."""
    ok(run_cli(*sweep_args(optuna_url, "search=small", "optimizer.lr=tag(log,interval(1e-5,1))",
                           "optimizer.momentum=0.0", "split.folds=3", "hydra.sweeper.n_trials=8", "train.epochs=15",
                           "hydra.sweeper.ensemble=3",
                           "hydra.sweeper.pruner=median", "+hydra.sweeper.pruner_kwargs.n_startup_trials=3")))
    trials = load_study("s", optuna_url).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(len(t.intermediate_values) < 15 for t in pruned)
    parent, children = parent_and_children(mlflow_client)
    for trial in pruned:  # the value the pruner heard each epoch is the mean over the 3 folds
        run = next(c for c in children if c.info.run_id == trial.user_attrs["run_id"])
        assert len(epoch_values(mlflow_client, run.info.run_id, "val_loss_std")) == len(trial.intermediate_values)

    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, t.number))[:3]
    assert parent.data.tags["sweeper.model_run_id"] == ",".join(t.user_attrs["run_id"] for t in complete)
    assert parent.data.metrics["ensemble_size"] == 3
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{parent.info.run_id}/model")
    folder = tmp_path / "a"
    folder.mkdir()
    cfg = OmegaConf.load(mlflow_client.download_artifacts(complete[0].user_attrs["run_id"], "config.yaml", str(folder)))
    dataset = load_data(cfg)
    rows = pd.read_csv(CAR_PRICES).iloc[dataset.indices["test"]]
    predictions = model.predict(rows.drop(columns="Price"))
    assert parent.data.metrics["ensemble_test_rmse"] == pytest.approx(rmse(rows["Price"].to_numpy(), predictions),
                                                                       rel=1e-9)
    members = []
    for t in complete:
        member_folder = folder / str(t.number)
        member_folder.mkdir()
        npz = mlflow_client.download_artifacts(t.user_attrs["run_id"], "model.npz", str(member_folder))
        members += load_members(npz)
    assert np.allclose(predictions, predict_members(members, rows), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------- the summary weighs its noise
def _study(trial_0: dict, values: list[float]):
    import optuna
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="minimize")
    for number, value in enumerate(values):
        study.add_trial(optuna.trial.create_trial(
            value=value, params={"x": float(number)}, distributions={"x": FloatDistribution(0, 10)},
            user_attrs={"metrics": trial_0 if number == 0 else {}}))
    return study


@pytest.mark.parametrize("trial_0, said", [
    ({"val_rmse_std": 150.0}, "trial #2 beats trial 0 (the defaults) by 100 val_rmse; trial 0's val_rmse varies by "
                              "150 (sd) over its folds: within that spread: the pick may be noise"),
    ({"val_rmse_std": 60.0}, "over its folds: beyond that spread"),
    ({"val_rows": 80.0}, "by 100 val_rmse on 80 validation rows, too few to tell it from noise; cross-validate"),
])
def test_the_summary_weighs_the_winners_margin_against_the_noise(trial_0, said):
    from sweeper.sweep.console import noise_line

    study = _study(trial_0, [2100.0, 2150.0, 2000.0])
    assert said in noise_line(study, "val_rmse", study.best_trial)


def test_the_summary_says_nothing_of_noise_on_a_large_split_or_when_the_defaults_win():
    from sweeper.sweep.console import noise_line

    for trial_0, values in (({"val_rows": 626.0}, [2100.0, 2000.0]), ({"val_rows": 80.0}, [1900.0, 2000.0])):
        study = _study(trial_0, values)
        assert noise_line(study, "val_rmse", study.best_trial) is None
