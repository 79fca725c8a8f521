"""The winning model, usable: an MLflow Model that predicts raw rows, the predict command, the
Model Registry, a real ``mlflow models serve``, and a wheel that runs outside the checkout.

Every run is the real CLI; every model is loaded back through MLflow's own API.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper import CHECKOUT
from tests.servers import free_port, tail

pytestmark = pytest.mark.slow

REPO = CHECKOUT
BIN = Path(sys.executable).parent


def holey_csv(folder: Path, n: int = 240) -> Path:
    """Numbers and strings with missing cells, a target that depends on both."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({
        "size": rng.normal(50, 10, n).round(2),
        "rooms": rng.integers(1, 6, n),
        "city": np.array(["north", "south", "east"])[rng.integers(0, 3, n)],
    })
    frame["price"] = (3 * frame["size"] + 10 * frame["rooms"] + 25 * (frame["city"] == "east")
                      + rng.normal(0, 2, n)).round(2)
    frame.loc[::7, "size"] = np.nan
    frame.loc[::11, "city"] = np.nan
    path = folder / "houses.csv"
    frame.to_csv(path, index=False)
    return path


def held_out_rows(path: Path, target: str, seed: int = 0) -> pd.DataFrame:
    """The test split's raw rows, recomputed from the documented split rule."""
    raw = pd.read_csv(path)
    kept = raw[raw[target].notna()].reset_index(drop=True)
    n_test, n_val = math.floor(0.2 * len(kept) + 0.5), math.floor(0.1 * len(kept) + 0.5)
    order = np.random.default_rng(seed).permutation(len(kept))
    return kept.iloc[order[len(kept) - n_test:]]


def rmse(y: np.ndarray, predictions: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(predictions)) ** 2)))


@pytest.fixture
def trained(run_cli, mlflow_client, mlflow_uri, workdir):
    """A single run on a CSV with holes: (run, csv path)."""
    path = holey_csv(workdir)
    proc = run_cli("data=csv", f"data.path={path.name}", "data.target=price", "train.epochs=60")
    assert proc.returncode == 0, proc.stderr
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("houses").experiment_id])
    return run, path


def test_a_single_runs_model_predicts_raw_rows_to_its_logged_test_rmse(trained, mlflow_uri, mlflow_client, run_module, tmp_path):
    import mlflow

    run, path = trained
    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    rows = held_out_rows(path, "price")
    assert rows["size"].isna().any() and rows["city"].isna().any()  # the holes reach the model
    predictions = model.predict(rows.drop(columns="price"))
    assert predictions.shape == (len(rows),)
    assert rmse(rows["price"], predictions) == pytest.approx(run.data.metrics["test_rmse"], rel=1e-9)
    # No input schema for MLflow to cast cells to (the model reads them itself); the input
    # example, the file's first rows, names the columns.
    assert model.metadata.get_input_schema() is None
    assert list(model.input_example.columns) == ["size", "rooms", "city"]
    [logged] = mlflow_client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id and logged.name == "model"

    # No pickle anywhere: nothing in the model's folder, and it loads with pickle switched off.
    folder = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(tmp_path / "m")))
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    rows.to_csv(tmp_path / "test_rows.csv", index=False)
    script = (
        "import pickle, sys\n"
        "def refuse(*a, **k): raise RuntimeError('unpickling refused')\n"
        "pickle.load = pickle.loads = refuse\n"
        "import mlflow, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model({str(folder)!r})\n"
        f"print(m.predict(pd.read_csv({str(tmp_path / 'test_rows.csv')!r}).drop(columns='price')).sum())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip()) == pytest.approx(float(predictions.sum()), rel=1e-12)

    # The predict command on the run id: its RMSE line is the logged test RMSE.
    out = tmp_path / "out.csv"
    proc = run_module("sweeper.predict", run.info.run_id, str(tmp_path / "test_rows.csv"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    written = pd.read_csv(out)
    assert list(written.columns) == [*rows.columns, "prediction"] and len(written) == len(rows)
    np.testing.assert_allclose(written["prediction"], predictions, rtol=1e-12)
    line = [line for line in proc.stdout.splitlines() if line.startswith("rmse=")][0]
    assert float(line.split()[0].removeprefix("rmse=")) == pytest.approx(run.data.metrics["test_rmse"], rel=1e-5)


def test_predict_names_what_is_wrong_in_one_line(trained, run_module, tmp_path):
    run, path = trained
    rows = pd.read_csv(path).drop(columns=["city"])
    rows.to_csv(tmp_path / "no_city.csv", index=False)
    proc = run_module("sweeper.predict", run.info.run_id, str(tmp_path / "no_city.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: INPUT.csv {tmp_path / 'no_city.csv'}: the model's column(s) 'city' are not in the file; "
        "it has: 'size', 'rooms', 'price'"]
    rows = pd.read_csv(path).astype({"size": object})
    rows.loc[3, "size"] = "big"
    rows.to_csv(tmp_path / "big.csv", index=False)
    proc = run_module("sweeper.predict", run.info.run_id, str(tmp_path / "big.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: INPUT.csv {tmp_path / 'big.csv'}: column 'size' has 1 non-numeric value(s) (first: 'big' in row 4); "
        "list it in data.categorical to one-hot encode it, or fix the file"]
    proc = run_module("sweeper.predict", "0" * 32, str(path))
    assert proc.returncode == 2 and f"MODEL runs:/{'0' * 32}/model: cannot be loaded" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_sweeps_best_model_is_registered_and_predicts_like_its_trial(run_cli, run_module, optuna_url, mlflow_client,
                                                                      mlflow_uri, workdir, tmp_path):
    import mlflow

    path = holey_csv(workdir)
    proc = run_cli("-m", f"hydra.sweeper.storage={optuna_url}", "hydra.sweeper.study_name=s", "search=small",
                   "hydra.sweeper.n_trials=3", "train.epochs=40", "data=csv", f"data.path={path.name}",
                   "data.target=price", "hydra.sweeper.register_model=houses-price",
                   "hydra.sweeper.ensemble=1")  # the best trial's own model, not an ensemble
    assert proc.returncode == 0, proc.stderr
    assert "registered as models:/houses-price/1" in proc.stdout + proc.stderr
    experiment = mlflow_client.get_experiment_by_name("houses")
    runs = mlflow_client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if "sweeper.study" in r.data.tags]
    best = mlflow_client.get_run(parent.data.tags["sweeper.best_run_id"])
    # Trials log no model (the per-trial path stays cheap); the parent holds the best one.
    models = mlflow_client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert [m.source_run_id for m in models] == [parent.info.run_id]
    version = mlflow_client.get_model_version("houses-price", "1")
    assert version.run_id == parent.info.run_id

    rows = held_out_rows(path, "price")
    rows.to_csv(tmp_path / "test_rows.csv", index=False)
    mlflow.set_tracking_uri(mlflow_uri)
    predictions = mlflow.pyfunc.load_model("models:/houses-price/1").predict(rows.drop(columns="price"))
    assert rmse(rows["price"], predictions) == pytest.approx(best.data.metrics["test_rmse"], rel=1e-9)
    proc = run_module("sweeper.predict", "models:/houses-price/1", str(tmp_path / "test_rows.csv"))
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(__import__("io").StringIO(proc.stdout))["prediction"].to_numpy() == pytest.approx(predictions)
    line = [line for line in proc.stderr.splitlines() if line.startswith("rmse=")][0]
    assert float(line.split()[0].removeprefix("rmse=")) == pytest.approx(best.data.metrics["test_rmse"], rel=1e-5)
    trial = run_module("sweeper.predict", best.info.run_id, str(tmp_path / "test_rows.csv"))
    assert trial.returncode == 2
    assert (f"is trial {best.data.tags['sweeper.trial']} of a sweep, and trials log no model; the sweep's best is "
            f"runs:/{parent.info.run_id}/model") in trial.stderr


def test_mlflow_models_serve_answers_csv_and_json_rows_and_refuses_a_missing_column_in_one_line(trained, mlflow_uri,
                                                                                                tmp_path):
    import mlflow
    from mlflow.exceptions import MlflowException

    run, path = trained
    # Raw rows as in the file, the target and all: holes in every feature column, 'rooms' too,
    # which had none in training (pandas reads it as floats then).
    rows = held_out_rows(path, "price").head(12)
    rows.loc[rows.index[0], "rooms"] = np.nan
    assert rows[["size", "rooms", "city"]].isna().any().all()
    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    expected = model.predict(rows)
    unusable = rows.astype({"size": object})
    unusable.loc[unusable.index[2], "size"] = "big"
    refusals = []  # rows, and the one line naming the column the model refuses them with
    for refused, column in ((rows.drop(columns="city"), "city"), (unusable, "size")):
        with pytest.raises(MlflowException) as error:
            model.predict(refused)
        line = error.value.message
        assert "\n" not in line and f"column '{column}'" in line, line
        refusals.append((refused, line))

    port = free_port()
    log = tmp_path / "serve.log"
    # As in an activated environment: the server runs `uvicorn` from PATH.
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with open(log, "w") as handle:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "models", "serve", "-m", f"runs:/{run.info.run_id}/model", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def bodies(frame: pd.DataFrame) -> list[tuple[str, str]]:
        """``frame`` as the server takes it: (request body, content type) for CSV and both JSON layouts."""
        return [(frame.to_csv(index=False), "text/csv"),
                (json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}),
                 "application/json"),
                (json.dumps({"dataframe_records": json.loads(frame.to_json(orient="records"))}), "application/json")]

    def post(body: str, content_type: str) -> tuple[int, dict]:
        """The server's status and JSON answer to ``body`` POSTed to /invocations."""
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.5)
        for body, content_type in bodies(rows):
            status, answer = post(body, content_type)
            assert status == 200, (content_type, answer)
            np.testing.assert_allclose(answer["predictions"], expected, rtol=1e-12)
        for refused, line in refusals:
            for body, content_type in bodies(refused):
                status, answer = post(body, content_type)
                assert status == 400, (content_type, answer)
                assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in answer, answer
                assert "Traceback" not in answer["message"] and 'File "' not in answer["message"], answer
                # MLflow's server puts "Failed to predict data '<the rows>'." before a model's own
                # message: the model's one line is the answer's last.
                assert answer["message"].splitlines()[-1].endswith(line), answer
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def test_the_wheel_runs_a_sweep_and_a_run_from_any_directory_and_completes_in_bash(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(dist)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    [wheel] = dist.glob("sweeper_nn-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "--no-deps", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    # The dependencies come from this environment's site-packages (a path, so its .pth files, the
    # checkout's editable install among them, are not read): sweeper itself is the wheel's.
    [site] = (venv / "lib").glob("python3*/site-packages")
    import sysconfig
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH", "HYDRA_FULL_ERROR")}
    env["MPLBACKEND"] = "Agg"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=600)

    where = run("python", "-c", "import sweeper; print(sweeper.__file__); print(sweeper.CHECKOUT)")
    assert where.stdout.split() == [str(site / "sweeper" / "__init__.py"), "None"], where.stderr
    sweep = run("sweeper", "-m", "search=small", "hydra.sweeper.n_trials=2", "train.epochs=5")
    assert sweep.returncode == 0, sweep.stderr
    assert "model: runs:/" in sweep.stdout + sweep.stderr
    single = run("sweeper", "data=penguins", "train.epochs=5")
    assert single.returncode == 0, single.stderr
    assert "data: penguins.csv, 342 of 344 rows" in single.stdout
    # mlruns/ is where the command ran, as MLflow's own default is.
    assert (elsewhere / "mlruns" / "mlflow.db").is_file() and (elsewhere / "mlruns" / "optuna.log").is_file()

    # The console script's help names it as typed; Hydra's plugin scan finds each launcher once.
    assert run("sweeper", "--help").stdout.startswith("sweeper: train a NumPy feed-forward network")
    info = run("sweeper", "--info", "plugins").stdout
    launchers = info.split("Launcher:")[1].split("Sweeper:")[0].split()
    ours = [name for name in launchers if name.startswith("Sweeper")]
    assert sorted(ours) == ["SweeperJoblibLauncher", "SweeperLocalLauncher", "SweeperSlurmLauncher"], info
    assert len(launchers) == len(set(launchers)), info  # no name twice (submitit has its own Local and Slurm)

    script = run("sweeper", "-sc", "install=bash")
    assert script.returncode == 0 and "hydra_bash_completion" in script.stdout
    query = subprocess.run([str(venv / "bin" / "sweeper"), "-sc", "query=bash"], cwd=elsewhere, capture_output=True,
                           text=True, timeout=120, env={**env, "COMP_LINE": "sweeper model.act", "COMP_POINT": "17"})
    assert "model.activation=" in query.stdout.split(), query.stdout + query.stderr
