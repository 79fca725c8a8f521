"""``python -m sweeper`` end to end: the real CLI, a real MLflow store in a tmp folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper import PROJECT_ROOT

from .curves import epoch_values

pytestmark = pytest.mark.slow

#: Every config key SPEC.md names, as the dotted MLflow param it must become.
SPEC_PARAMS = [
    "data.features", "data.categorical", "data.target_scaling",
    "split.test_size", "split.val_size", "split.shuffle", "split.seed",
    "model.hidden", "model.activation", "model.output_activation", "model.init", "model.dtype",
    "regularization.l1", "regularization.l2", "regularization.dropout", "regularization.max_norm",
    "optimizer.lr", "optimizer.momentum", "optimizer.nesterov", "schedule.name",
    "train.epochs", "train.batch_size", "train.early_stopping.patience",
    "train.early_stopping.min_delta", "train.early_stopping.restore_best",
    "seed", "objective", "mlflow.tracking_uri", "mlflow.experiment",
]
FINAL_METRICS = [f"{split}_{m}" for split in ("train", "val", "test") for m in ("rmse", "mae", "r2")] + [
    "best_epoch", "epochs_run", "generalization_gap", "train_seconds",
]
CURVES = ("train_loss", "val_loss", "test_loss", "lr")
ARTIFACTS = {"config.yaml", "loss_curves.png", "model.npz", "data.json"}


def all_runs(client):
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments]) if experiments else []


def only_run(client):
    runs = all_runs(client)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def test_one_run_logs_params_curves_metrics_and_a_reloadable_model(run_cli, mlflow_client, tmp_path):
    proc = run_cli("train.epochs=30", "split.folds=1")  # one split: its val metrics recomputed below
    assert proc.returncode == 0, proc.stderr
    run = only_run(mlflow_client)
    assert run.info.status == "FINISHED"
    assert run.data.tags["sweeper.state"] == "COMPLETE"
    assert mlflow_client.get_experiment(run.info.experiment_id).name == "car_prices"
    assert run.info.run_id in proc.stdout and "test_rmse" not in proc.stderr

    assert set(SPEC_PARAMS) <= set(run.data.params)
    assert run.data.params["train.epochs"] == "30" and run.data.params["model.hidden"] == "[64, 32]"
    for curve in CURVES:
        history = mlflow_client.get_metric_history(run.info.run_id, curve)
        assert sorted(epoch_values(mlflow_client, run.info.run_id, curve)) == list(range(1, 31)), curve
        assert len(history) == 30, curve  # one point per epoch, none repeated
    val_loss = epoch_values(mlflow_client, run.info.run_id, "val_loss")
    assert run.data.metrics["val_loss"] == val_loss[30]  # the runs table's val_loss is the last epoch's
    # The final (restored best) network's validation loss is a metric of its own.
    best = int(run.data.metrics["best_epoch"])
    assert run.data.metrics["model_val_loss"] == pytest.approx(val_loss[best], rel=1e-12)
    assert set(FINAL_METRICS) <= set(run.data.metrics)
    assert run.data.metrics["epochs_run"] == 30
    for tag in ("sweeper.version.numpy", "sweeper.version.optuna", "sweeper.version.mlflow",
                "sweeper.version.hydra-core"):
        assert run.data.tags[tag]
    # MLflow's Run Name, Source and User columns: what it trained, the command, who ran it.
    import getpass

    assert run.info.run_name == "car_prices-relu-64x32"
    assert run.data.tags["mlflow.source.name"] == "python -m sweeper"
    assert run.data.tags["mlflow.source.type"] == "LOCAL" and run.data.tags["mlflow.user"] == getpass.getuser()
    assert {a.path for a in mlflow_client.list_artifacts(run.info.run_id)} == ARTIFACTS

    from sweeper.data import split_indices
    from sweeper.tracking.model_file import load_model
    from sweeper.train import rmse

    model_path = mlflow_client.download_artifacts(run.info.run_id, "model.npz", str(tmp_path))
    net, preprocessor = load_model(model_path)
    frame = pd.read_csv(PROJECT_ROOT / "data" / "car_prices.csv")
    test_rows = frame.iloc[split_indices(len(frame), 0.2, 0.1, True, 0)["test"]]
    predictions = preprocessor.inverse_target(net.forward(preprocessor.transform(test_rows)))
    assert rmse(test_rows["Price"].to_numpy()[:, None], predictions) == pytest.approx(
        run.data.metrics["test_rmse"], rel=1e-12
    )


def test_a_log_scaled_run_logs_its_metrics_in_the_targets_own_units(run_cli, mlflow_client, tmp_path):
    proc = run_cli("data.target_scaling=log", "train.epochs=3", "split.folds=1")
    assert proc.returncode == 0, proc.stderr
    run = only_run(mlflow_client)
    assert run.data.params["data.target_scaling"] == "log"

    from sweeper.data import split_indices
    from sweeper.tracking.model_file import load_model
    from sweeper.train import rmse

    net, preprocessor = load_model(mlflow_client.download_artifacts(run.info.run_id, "model.npz", str(tmp_path)))
    price = pd.read_csv(PROJECT_ROOT / "data" / "car_prices.csv")
    parts = split_indices(len(price), 0.2, 0.1, True, 0)
    ln_train = np.log(price["Price"].to_numpy()[parts["train"]])
    test_rows = price.iloc[parts["test"]]
    dollars = np.exp(net.forward(preprocessor.transform(test_rows)) * ln_train.std() + ln_train.mean())
    assert rmse(test_rows["Price"].to_numpy()[:, None], dollars) == pytest.approx(
        run.data.metrics["test_rmse"], rel=1e-12
    )


def write_houses(path: Path, n: int = 160) -> None:
    """A CSV a user might bring: a yes/no column, a string column, and a city seen only in test rows."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "size": rng.uniform(50, 200, n).round(1),
        "garage": rng.choice(["yes", "no"], n),
        "city": rng.choice(["Paris", "Lyon", "Nice"], n),
        "rooms": rng.integers(1, 6, n),
    })
    frame.loc[n - 5:, "city"] = "Brest"  # unshuffled, the last rows are the test rows
    premium = frame["city"].map({"Paris": 50_000, "Lyon": 20_000, "Nice": 30_000, "Brest": 10_000})
    frame["price"] = (frame["size"] * 1000 + (frame["garage"] == "yes") * 20_000 + premium
                      + rng.normal(0, 5000, n)).round(0)
    frame.to_csv(path, index=False)


def test_user_csv_with_yes_no_and_string_columns_trains_and_unseen_test_categories_work(
    run_cli, mlflow_client, workdir, tmp_path
):
    write_houses(workdir / "houses.csv")
    proc = run_cli("data=csv", "data.path=houses.csv", "data.target=price", "split.shuffle=false",
                   "train.epochs=60")  # relative to the working directory
    assert proc.returncode == 0, proc.stderr
    run = only_run(mlflow_client)
    assert run.info.status == "FINISHED"
    assert mlflow_client.get_experiment(run.info.experiment_id).name == "houses"
    assert run.data.params["data.path"] == str(workdir / "houses.csv")
    assert np.isfinite(run.data.metrics["test_rmse"]) and run.data.metrics["test_r2"] > 0.5

    from sweeper.tracking.model_file import load_model

    _, preprocessor = load_model(mlflow_client.download_artifacts(run.info.run_id, "model.npz", str(tmp_path)))
    arrays = preprocessor.to_arrays()
    categories = {str(v) for k, v in arrays.items() if k.endswith(".categories") for v in v}
    assert {"Paris", "Lyon", "Nice"} <= categories and "Brest" not in categories


BAD_CSV_EDITS = {
    "non_numeric": ("size", lambda f: f.astype({"size": object}).assign(**{"size": f["size"].where(f.index != 7, "big")})),
    "nan_feature": ("rooms", lambda f: f.assign(rooms=f["rooms"].where(f.index != 9))),
}


@pytest.mark.parametrize(
    "args, named",
    [
        (["model.activation=swish"], ["model.activation", "relu, leaky_relu"]),
        (["optimizer.lr=-0.1"], ["optimizer.lr", "> 0"]),
        (["regularization.dropout=1.5"], ["regularization.dropout", "[0, 1)"]),
        (["split.test_size=0.7", "split.val_size=0.4"], ["split.test_size + split.val_size"]),
        (["schedule=step", "schedule.gamma=1.5"], ["schedule.gamma", "(0, 1]"]),
        # OmegaConf alone would run these as true: any int, and yes/on, become a bool.
        (["optimizer.nesterov=3"], ["optimizer.nesterov: 3 is not a bool; allowed: true, false"]),
        (["split.shuffle=yes"], ["split.shuffle: 'yes' is not a bool; allowed: true, false"]),
        (["schedule=cosine", "schedule.warm_restarts=2"], ["schedule.warm_restarts: 2 is not a bool"]),
        (["objective=test_rmse"], ["objective", "val_rmse"]),
        (["data=csv", "data.path=missing.csv", "data.target=price"], ["data.path", "missing.csv"]),
        (["data=csv", "data.path=houses.csv", "data.target=cost"], ["data.target", "cost", "price"]),
        (["data=csv", "data.path=non_numeric.csv", "data.target=price"], ["size", "big"]),
        (["data=csv", "data.path=nan_feature.csv", "data.target=price", "data.missing.numeric=error"],
         ["rooms", "missing", "data.missing.numeric=error"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and "=" in v[0] else None,
)
def test_bad_input_is_one_line_naming_the_key_and_leaves_no_run(run_cli, mlflow_client, workdir, args, named):
    write_houses(workdir / "houses.csv")
    houses = pd.read_csv(workdir / "houses.csv")
    for name, (_, edit) in BAD_CSV_EDITS.items():
        edit(houses).to_csv(workdir / f"{name}.csv", index=False)
    proc = run_cli(*args, "train.epochs=2")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and all(text in lines[0] for text in named), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all_runs(mlflow_client) == []


@pytest.mark.parametrize(
    "args, line",
    [
        (["model.nonsense=1"], "error: model.nonsense: unknown key; allowed: hidden, activation,"),
        (["data=nope"], "error: data: unknown option 'nope'; allowed: car_prices, csv, diamonds"),
        (["schedule=linear"], "error: schedule: unknown option 'linear'; allowed: constant, cosine,"),
        (["schedule.gamma=0.5"], "error: schedule.gamma: unknown key"),  # constant has no gamma
        (["train.epochs=many"], "error: train.epochs: Value 'many' of type 'str' could not be"),
        (["model.hidden=[64,"], "error: cannot parse override 'model.hidden=[64,': "),
        (["hydra.sweeper.pruner_kwargs={n_warmup_steps:10}"],
         "error: hydra.sweeper.pruner_kwargs: 'n_warmup_steps' is not in it yet; add each new key on its own:"
         " +hydra.sweeper.pruner_kwargs.n_warmup_steps=VALUE"),
    ],
)
def test_hydra_composition_errors_are_one_line_naming_the_key(run_cli, mlflow_client, args, line):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert all_runs(mlflow_client) == []


def test_full_traceback_only_with_hydra_full_error(run_cli):
    proc = run_cli("model.activation=swish", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "model.activation" in proc.stderr


def test_default_config_reaches_test_r2_of_0_90_on_car_prices(run_cli, mlflow_client):
    proc = run_cli()
    assert proc.returncode == 0, proc.stderr
    run = only_run(mlflow_client)
    assert run.data.metrics["test_r2"] >= 0.90
    assert run.data.params["train.epochs"] == "200"
    assert run.data.metrics["best_epoch"] <= run.data.metrics["epochs_run"]


def test_an_unreachable_tracking_server_is_one_line_within_the_bound(run_cli):
    import time

    from tests.servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    # MLflow's retries cut to 1 + 2 + 4 s (the default budget, ~30 s, is tests/test_store_failures'
    # test_the_default_budget_is_about_30_seconds): what is timed is that the budget holds.
    proc = run_cli("train.epochs=2", f"mlflow.tracking_uri={uri}",
                   env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"})
    took = time.monotonic() - started
    assert proc.returncode == 2
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: mlflow.tracking_uri={uri}: starting a run failed: ")
    assert "Connection refused" in line
    # Retried (not at once), and bounded by the budget plus the process's start on a loaded
    # machine: MLflow's own default retries wait over four minutes.
    assert 3 <= took < 60, took


def test_a_run_on_a_terminal_says_its_data_then_shows_its_epochs_before_it_ends(mlflow_uri, workdir):
    """On a terminal (a pty of 100 columns here) the data line comes before training, then a live
    bar with the epoch, train and validation loss, elapsed time and ETA, redrawn in place; the
    final table comes after, as before."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", "data=diamonds", "train.epochs=8",
                             "train.early_stopping.patience=null"],
                            stdin=follower, stdout=follower, stderr=follower, cwd=workdir, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the run ended and closed its side
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    data, ended = text.index("data: diamonds.csv"), text.index("COMPLETE  MLflow run")
    epochs = [m for m in re.finditer(r"\rtraining: +\d+%\|[^|]*\| ([1-8])/8 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+epoch/s, "
                                     r"train_loss [\d.e+-]+  val_loss [\d.e+-]+\]", text)]
    assert epochs and data < epochs[0].start() and epochs[-1].start() < ended, text[:3000]


def test_a_long_run_off_a_terminal_says_its_epochs_in_a_line_every_few_seconds():
    """Piped or in a sweep's trial: no bar, a line every ``every`` seconds once ``after`` have passed."""
    import io

    from sweeper.app.progress import Progress
    from sweeper.train import EpochLog

    out = io.StringIO()
    progress = Progress(300, out, live=False, label="trial 12", after=0.0, every=3600.0)
    for epoch in (1, 2):
        progress(EpochLog(epoch, 0.01, {"train": 0.0341, "val": 0.0413, "test": 0.05}, {}))
    progress.close()
    [line] = out.getvalue().splitlines()  # the second epoch came before `every` had passed
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] trial 12: epoch 1/300  train_loss 0\.0341  val_loss 0\.0413  "
                        r"00:00 elapsed  ETA \d\d:\d\d", line), line
