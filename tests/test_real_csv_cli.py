"""A user's own CSV through the real CLI: holes and messy columns just work, or the sweep stops
before its first trial with one line and nothing created in Optuna or MLflow.

Every CSV here is written by the test; every command is a real ``python -m sweeper`` subprocess
against throw-away SQLite stores, read back with ``optuna`` and ``MlflowClient``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from optuna.trial import TrialState

from sweeper import PROJECT_ROOT
from .stores import load_study, study_names

pytestmark = pytest.mark.slow

STUDY = "s"


def sweep(run_cli, optuna_url: str, *overrides: str):
    return run_cli("-m", f"hydra.sweeper.storage={optuna_url}", f"hydra.sweeper.study_name={STUDY}", *overrides)


def one_error_line(proc) -> str:
    """The one ``error:`` line on stderr (Optuna's own study-created line may precede it)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("[I ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def assert_nothing_created(optuna_url: str, mlflow_client) -> None:
    path = Path(optuna_url.removeprefix("sqlite:///"))
    assert not path.exists() or study_names(optuna_url) == []
    assert [e.name for e in mlflow_client.search_experiments()] == ["Default"]
    assert mlflow_client.search_runs(["0"]) == []


def numbers_frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    frame["y"] = (frame["a"] + 2 * frame["b"] - frame["c"] + 0.1 * rng.normal(size=n)).round(4)
    return frame


def test_penguins_sweep_imputes_from_training_rows_and_generalises(run_cli, optuna_url, mlflow_client, tmp_path):
    proc = sweep(run_cli, optuna_url, "data=penguins", "hydra.sweeper.n_trials=6")
    assert proc.returncode == 0, proc.stderr
    assert "data: penguins.csv, 342 of 344 rows" in proc.stdout + proc.stderr
    study = load_study(STUDY, optuna_url)
    assert len(study.trials) == 6
    assert any(t.state == TrialState.COMPLETE for t in study.trials)
    best = mlflow_client.get_run(study.best_trial.user_attrs["run_id"])
    assert best.data.metrics["test_r2"] >= 0.8

    # The imputation statistics in the model file, recomputed with pandas on the same rows: 342
    # rows cross-validate (split.folds=auto), so the train and validation rows are pooled.
    assert best.data.params["split.folds"] == "5"
    raw = pd.read_csv(PROJECT_ROOT / "data" / "penguins.csv")
    kept = raw[raw["body_mass_g"].notna()].reset_index(drop=True)
    n_test = math.floor(0.2 * len(kept) + 0.5)
    train = kept.iloc[np.random.default_rng(0).permutation(len(kept))[: len(kept) - n_test]]
    folder = Path(mlflow_client.download_artifacts(best.info.run_id, "", str(tmp_path / "best")))
    with np.load(folder / "model.npz", allow_pickle=False) as npz:
        features = [str(f) for f in npz["data.features"]]
        fills = {name: npz[f"data.column{i}.fill"] for i, name in enumerate(features)}
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "year"):
        assert float(fills[name]) == train[name].median(), name
    assert str(fills["sex"]) == "<missing>"
    info = json.loads((folder / "data.json").read_text())
    assert info["dropped_rows"] == {"target_missing": 2} and info["rows_in_file"] == 344
    assert info["columns"]["sex"]["missing"] == 9 and info["columns"]["sex"]["strategy"] == "category"


def test_missing_cells_with_the_error_strategy_stop_the_sweep_naming_every_column(
        run_cli, optuna_url, mlflow_client, workdir):
    frame = numbers_frame()
    frame.loc[[3, 30], "a"] = np.nan
    frame.loc[5, "b"] = np.nan
    frame.loc[[7, 8, 9], "c"] = np.nan
    frame.to_csv(workdir / "holes.csv", index=False)
    proc = sweep(run_cli, optuna_url, "data=csv", "data.path=holes.csv", "data.target=y",
                 "data.missing.numeric=error")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "columns 'a' (2), 'b' (1), 'c' (3) have missing values and data.missing.numeric=error" in line
    assert_nothing_created(optuna_url, mlflow_client)


def _bad_csv(workdir: Path, case: str) -> str:
    frame = numbers_frame()
    if case == "non-numeric cell":
        frame = frame.astype({"b": object})
        frame.loc[40, "b"] = "n/a yet"
    elif case == "free text":
        frame["name"] = [f"chevrolet model {i}" for i in range(len(frame))]
    elif case == "constant target":
        frame["y"] = 7.0
    if case == "duplicate header":
        text = frame.to_csv(index=False).replace("a,b,c,y", "a,b,a,y", 1)
        (workdir / "bad.csv").write_text(text)
    else:
        frame.to_csv(workdir / "bad.csv", index=False)
    return "bad.csv"


@pytest.mark.parametrize(("case", "expected"), [
    ("non-numeric cell", "column 'b' has 1 non-numeric value(s) (first: 'n/a yet' in row 41)"),
    ("free text", "column 'name' (150 distinct values in 150 rows) looks like identifiers or free text"),
    ("duplicate header", "bad.csv has the column name 'a' twice (columns 1 and 3)"),
    ("constant target", "data.target: column 'y' has the same value (7) in every row"),
])
def test_an_unusable_csv_stops_the_sweep_before_any_trial(run_cli, optuna_url, mlflow_client, workdir, case, expected):
    path = _bad_csv(workdir, case)
    proc = sweep(run_cli, optuna_url, "data=csv", f"data.path={path}", "data.target=y")
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert "trial 0" not in proc.stdout + proc.stderr
    assert_nothing_created(optuna_url, mlflow_client)


def test_objectives_no_trial_produces_stop_the_sweep_naming_the_key(run_cli, optuna_url, mlflow_client):
    proc = sweep(run_cli, optuna_url, "hydra.sweeper.sampler=nsga2", "hydra.sweeper.directions=[val_rmse,nope]")
    assert proc.returncode == 2
    assert "hydra.sweeper.directions: no trial produces 'nope'; allowed: train_rmse" in one_error_line(proc)
    assert_nothing_created(optuna_url, mlflow_client)


def test_a_sweep_whose_every_trial_fails_exits_non_zero_with_the_commonest_reason(
        run_cli, optuna_url, mlflow_client):
    proc = sweep(run_cli, optuna_url, "search=small", "hydra.sweeper.n_trials=2", "train.epochs=5",
                 "optimizer.lr=choice(5000.0,9000.0)", "optimizer.momentum=0.9")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_error_line(proc)
    # Both diverge, at NaN or at the divergence bound (which one depends on the sampled widths):
    # the line names the reason the most trials share, grouped by its words.
    assert re.search(rf"no trial of study '{STUDY}' completed \(2 FAIL\); most common fail reason \([12] of 2\): "
                     r"(fold \d: )?train_loss (became nan|[0-9.e+]+ at epoch 1 exceeded)", line), line
    study = load_study(STUDY, optuna_url)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    [parent] = [r for r in mlflow_client.search_runs(
        [mlflow_client.get_experiment_by_name("car_prices").experiment_id]) if "sweeper.study" in r.data.tags]
    assert parent.info.status == "FAILED"


def test_a_semicolon_latin1_export_trains_with_no_extra_keys(run_cli, mlflow_client, workdir, tmp_path):
    frame = numbers_frame()
    frame["town"] = np.where(np.arange(len(frame)) % 3, "Zürich", "Genève")
    frame["sold"] = pd.date_range("2019-01-01", periods=len(frame), freq="D").strftime("%Y-%m-%d")
    frame.to_csv(workdir / "export.csv", sep=";", decimal=",", encoding="latin-1", index=False)
    proc = run_cli("data=csv", "data.path=export.csv", "data.target=y", "train.epochs=40")
    assert proc.returncode == 0, proc.stderr
    assert "read as ';'-separated latin-1 with decimal commas" in proc.stdout
    assert "sold: ISO dates -> days since 1970-01-01" in proc.stdout
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("export").experiment_id])
    assert run.data.metrics["test_r2"] > 0.9
    info = json.loads(Path(mlflow_client.download_artifacts(run.info.run_id, "data.json", str(tmp_path))).read_text())
    assert info["dialect"]["sep"] == ";" and info["dialect"]["encoding"] == "latin-1"
    assert info["columns"]["sold"]["kind"] == "date" and info["columns"]["town"]["kind"] == "binary"


def test_rerun_check_is_bit_identical_for_a_run_that_imputed(run_cli, run_module, mlflow_client, workdir):
    frame = numbers_frame()
    frame.loc[::9, "a"] = np.nan
    frame["colour"] = np.array(["red", "green", "blue"])[np.arange(len(frame)) % 3]
    frame.loc[::11, "colour"] = np.nan
    frame.to_csv(workdir / "holes.csv", index=False)
    proc = run_cli("data=csv", "data.path=holes.csv", "data.target=y", "train.epochs=15",
                   "data.missing.numeric=mean", "data.missing.indicator=true")
    assert proc.returncode == 0, proc.stderr
    assert "a: 17 missing -> mean" in proc.stdout and "colour: 14 missing -> category <missing>" in proc.stdout
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("holes").experiment_id])
    assert run.data.params["data.missing.numeric"] == "mean"
    check = run_module("sweeper.rerun", run.info.run_id, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout


@pytest.mark.parametrize(("override", "expected"), [
    ("data.missing.numeric=zero", "data.missing.numeric: unknown value 'zero'; allowed: median, mean, drop_rows, error"),
    ("data.max_categories=1", "data.max_categories: 1 is out of range; allowed: an integer >= 2"),
    ("data.sep=ab", "data.sep: 'ab' is not a one-character delimiter"),
    ("data.encoding=klingon", "data.encoding: 'klingon' is not an encoding Python knows"),
    ("data.drop=[Nope]", "data.drop: column 'Nope' is not in car_prices.csv"),
])
def test_bad_data_settings_are_one_line_in_a_single_run(run_cli, mlflow_client, override, expected):
    proc = run_cli(override)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert mlflow_client.search_runs(["0"]) == [] and len(mlflow_client.search_experiments()) == 1


def test_a_csv_with_a_shifted_row_is_one_line_for_a_run_and_a_sweep_and_nothing_is_logged(
        run_cli, optuna_url, mlflow_client, workdir):
    """The first data row has an extra leading field: pandas would have realigned every column
    (Price read from Doors) and the run ended COMPLETE. Refused before any run or study exists."""
    lines = (PROJECT_ROOT / "data" / "car_prices.csv").read_text().splitlines()
    lines[1] = "17," + lines[1]
    (workdir / "shifted.csv").write_text("\n".join(lines) + "\n")
    common = ("data=csv", "data.path=shifted.csv", "data.target=Price", "train.epochs=3")
    for proc in (run_cli(*common), sweep(run_cli, optuna_url, *common, "search=small", "hydra.sweeper.n_trials=1")):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "shifted.csv line 2 has 19 fields, its header 18; the row is refused, not realigned" in one_error_line(proc)
    assert_nothing_created(optuna_url, mlflow_client)


def test_a_study_resumed_on_another_target_is_refused(run_cli, optuna_url, mlflow_client, workdir):
    numbers_frame().to_csv(workdir / "nums.csv", index=False)
    common = ("data=csv", "data.path=nums.csv", "search=small", "hydra.sweeper.n_trials=1", "train.epochs=3")
    first = sweep(run_cli, optuna_url, *common, "data.target=y")
    assert first.returncode == 0, first.stderr
    again = sweep(run_cli, optuna_url, *common, "data.target=c", "hydra.sweeper.n_trials=2")
    assert again.returncode == 2
    assert (f"hydra.sweeper.study_name='{STUDY}': that study's trials have data.target='y', this sweep's 'c'; "
            "choose another study_name") in one_error_line(again)
    assert len(load_study(STUDY, optuna_url).trials) == 1
