"""``python -m sweeper.report`` on a real 8-trial sweep (run once for the module) and on runs with
scripted curves logged through ``MlflowClient`` the way the app logs them."""

from __future__ import annotations

import base64
import dataclasses
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper.report.build import ARTIFACT_PATH, PLOTS

from . import components, zygote
from .curves import epoch_values
from .zygote import command_env

pytestmark = pytest.mark.slow

REPORT_FILES = {"trials.csv", "report.html", "importances.json", *(name for name, _ in PLOTS)}


def _env(mlflow_uri: str) -> dict[str, str]:
    return command_env({"MLFLOW_TRACKING_URI": mlflow_uri})


def _run(module: str, *args: str, mlflow_uri: str, cwd: Path) -> subprocess.CompletedProcess:
    return zygote.shared().run(["-m", module, *args], _env(mlflow_uri), cwd, timeout=300)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, empty_mlflow_db):
    """One real 8-trial sweep (search=small, 8 epochs) and its report, shared by the module's tests."""
    root = tmp_path_factory.mktemp("report_sweep")
    (root / "mlruns").mkdir()
    shutil.copyfile(empty_mlflow_db, root / "mlruns" / "mlflow.db")
    mlflow_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    optuna_url = f"sqlite:///{root / 'mlruns' / 'optuna.db'}"
    proc = _run("sweeper", "-m", "search=small", "hydra.sweeper.n_trials=8", "train.epochs=8",
                "train.early_stopping.patience=3", f"hydra.sweeper.storage={optuna_url}",
                mlflow_uri=mlflow_uri, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent_id = re.search(r"MLflow parent run ([0-9a-f]{32})", proc.stdout + proc.stderr).group(1)

    out = root / "report"
    report = _run("sweeper.report", "--sweep", parent_id, "--out", str(out), mlflow_uri=mlflow_uri, cwd=root)
    assert report.returncode == 0, report.stderr[-3000:]
    return {"root": root, "uri": mlflow_uri, "optuna": optuna_url, "parent": parent_id, "out": out,
            "stdout": report.stdout}


def _history(client, run_id: str, key: str) -> np.ndarray:
    curve = epoch_values(client, run_id, key)
    return np.array([curve[step] for step in sorted(curve)])


def _same_param(csv_value, logged: str) -> bool:
    if logged == "None":
        return pd.isna(csv_value)
    if isinstance(csv_value, (bool, np.bool_)):
        return str(bool(csv_value)) == logged
    if isinstance(csv_value, (int, float, np.number)):
        return float(csv_value) == float(logged)
    return str(csv_value) == logged


def test_trials_csv_matches_the_logged_curves_and_params(sweep):
    from mlflow import MlflowClient

    client = MlflowClient(sweep["uri"])
    # pandas before 3 reads 0.00703573702872215 back a digit short unless asked to round-trip;
    # pandas 3 round-trips by default and deprecates the argument.
    precise = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    table = pd.read_csv(sweep["out"] / "trials.csv", **precise)
    assert len(table) == 8
    assert sorted(table["trial"]) == list(range(8))
    for _, row in table.iterrows():
        run = client.get_run(row["run_id"])
        assert run.data.tags["mlflow.parentRunId"] == sweep["parent"]
        assert row["state"] == run.data.tags["sweeper.state"]
        train, val = _history(client, row["run_id"], "train_loss"), _history(client, row["run_id"], "val_loss")
        best = int(np.argmin(val)) + 1  # min_delta = 0: the first epoch of the minimum
        assert row["best_epoch"] == best == run.data.metrics["best_epoch"]
        assert row["epochs_run"] == len(val)
        assert row["val_loss_rise"] == pytest.approx((val[-1] - val[best - 1]) / val[best - 1], rel=1e-12, abs=1e-15)
        assert row["generalization_gap"] == pytest.approx(val[best - 1] - train[best - 1], rel=1e-12, abs=1e-15)
        for key, logged in run.data.params.items():
            assert _same_param(row[key], logged), (key, row[key], logged)
        if row["state"] == "COMPLETE":
            assert row["val_test_gap"] == pytest.approx(
                (run.data.metrics["test_rmse"] - run.data.metrics["val_rmse"]) / run.data.metrics["val_rmse"])
    # The stdout table lists the top trials with their gap, best epoch and saving.
    assert "gap" in sweep["stdout"] and "best/run" in sweep["stdout"] and "saving" in sweep["stdout"]


def _log_scripted_run(client, experiment_id: str, parent_id: str, trial: int, *, val: list[float],
                      epochs: int, patience: int | None, state: str, train_status: str,
                      old_sweeper: bool = False, rmse: tuple[float, float] | None = None,
                      lr: float | None = None) -> str:
    """A child run logged as ``sweeper.app`` logs one: tags, dotted params, curves per epoch, final
    metrics with ``best_epoch``, ``epochs_run`` and (unless it failed) ``generalization_gap``;
    ``old_sweeper``: without those three, as no run of this sweeper is; ``rmse``: its (val_rmse,
    test_rmse), else tanh trials score ~100, relu ones ~150, and test is 10% worse; ``lr``, else 0.01 × (trial + 1)."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=f"trial-{trial}",
                            tags={"mlflow.parentRunId": parent_id, "sweeper.trial": str(trial)})
    run_id = run.info.run_id
    params = {"model.activation": "relu" if trial % 2 else "tanh", "optimizer.lr": str(lr or 0.01 * (trial + 1)),
              "train.epochs": str(epochs), "train.early_stopping.patience": str(patience),
              "train.early_stopping.min_delta": "0.0", "train.early_stopping.restore_best": "True",
              "regularization.max_norm": "None", "objective": "val_rmse"}
    now = int(time.time() * 1000)
    metrics = []
    for epoch, loss in enumerate(val, start=1):
        metrics += [Metric("val_loss", loss, now, epoch), Metric("train_loss", loss * 0.8, now, epoch),
                    Metric("test_loss", loss * 1.1, now, epoch), Metric("lr", 0.01, now, epoch)]
    if state != "FAIL":
        val_rmse = (100.0 if params["model.activation"] == "tanh" else 150.0) + trial
        val_rmse, test_rmse = rmse or (val_rmse, 1.1 * val_rmse)
        metrics += [Metric("val_rmse", val_rmse, now, 0), Metric("test_rmse", test_rmse, now, 0)]
    if not old_sweeper:
        best = int(np.argmin(val)) + 1
        metrics += [Metric("best_epoch", best, now, 0), Metric("epochs_run", len(val), now, 0)]
        if state != "FAIL":
            metrics.append(Metric("generalization_gap", val[best - 1] - 0.8 * val[best - 1], now, 0))
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()], metrics=metrics)
    client.set_tag(run_id, "sweeper.state", state)
    client.set_tag(run_id, "sweeper.train_status", train_status)
    client.set_terminated(run_id, "FAILED" if state == "FAIL" else "FINISHED")
    return run_id


def test_the_report_shows_the_parent_runs_importances_as_they_were_logged(sweep, tmp_path):
    import json

    from mlflow import MlflowClient

    client = MlflowClient(sweep["uri"])
    logged = json.loads(Path(client.download_artifacts(sweep["parent"], "param_importances.json", str(tmp_path)))
                        .read_text())
    shown = json.loads((sweep["out"] / "importances.json").read_text())
    assert shown == logged and logged["objective"] and logged["generalization_gap"]
    assert sum(logged["objective"].values()) == pytest.approx(1.0)
    # schedule.gamma exists only under the exponential schedule: judged on the trials that have it.
    assert logged["trials_with"].get("schedule.gamma", 0) < logged["trials"]
    # Drawn once, by the parent: the report's picture is the parent's, byte for byte.
    drawn = Path(client.download_artifacts(sweep["parent"], "param_importances.png", str(tmp_path))).read_bytes()
    assert (sweep["out"] / "importances.png").read_bytes() == drawn
    page = (sweep["out"] / "report.html").read_text(encoding="utf-8")
    assert base64.b64encode(drawn).decode("ascii") in page and "No parameter importances" not in page


def test_the_parent_runs_importances_are_ped_anova_on_the_sweeps_own_study(sweep):
    """What the parent logged is Optuna's PED-ANOVA, by name (fANOVA, Optuna 4's default, needs
    scikit-learn), on the study in the sweep's Optuna storage: its trials and real distributions."""
    import json
    import tempfile

    import optuna
    from mlflow import MlflowClient

    client = MlflowClient(sweep["uri"])
    name = client.get_run(sweep["parent"]).data.tags["sweeper.study"]
    study = optuna.load_study(study_name=name, storage=sweep["optuna"])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= 4 and all("generalization_gap" in t.user_attrs["metrics"] for t in complete)
    expected = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    with tempfile.TemporaryDirectory() as tmp:
        logged = json.loads(Path(client.download_artifacts(sweep["parent"], "param_importances.json", tmp))
                            .read_text())
    assert logged["objective"] == pytest.approx(dict(expected)) and logged["trials"] == len(complete)


def test_early_stop_saving_and_val_loss_rise_on_scripted_curves(mlflow_uri, mlflow_client, tmp_path):
    from sweeper.report import load_trials
    from sweeper.report.build import display_table, write_report
    from sweeper.report.findings import knob_findings, overall_findings
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    experiment_id = mlflow_client.create_experiment("scripted")
    parent = mlflow_client.create_run(experiment_id, run_name="scripted",
                                      tags={"sweeper.study": "scripted", "sweeper.sampler": "tpe"})
    parent_id = parent.info.run_id
    # Early stopping on (patience 3, budget 20): best at epoch 6, stopped at 9 -> saved 11/20.
    stopped = _log_scripted_run(mlflow_client, experiment_id, parent_id, 0, epochs=20, patience=3,
                                state="COMPLETE", train_status="early_stopped",
                                val=[1.0, 0.8, 0.6, 0.5, 0.45, 0.4, 0.42, 0.43, 0.44])
    # Off (budget 10): best at 6, four epochs past it; early stopping saved nothing it can be credited with.
    off = _log_scripted_run(mlflow_client, experiment_id, parent_id, 1, epochs=10, patience=None,
                            state="COMPLETE", train_status="completed",
                            val=[1.0, 0.8, 0.6, 0.65, 0.7, 0.5, 0.55, 0.6, 0.62, 0.7])
    # On but never triggered (budget 6): saved nothing.
    completed = _log_scripted_run(mlflow_client, experiment_id, parent_id, 2, epochs=6, patience=3,
                                  state="COMPLETE", train_status="completed", val=[0.9, 0.7, 0.6, 0.62, 0.5, 0.49])
    pruned = _log_scripted_run(mlflow_client, experiment_id, parent_id, 3, epochs=20, patience=3,
                               state="PRUNED", train_status="stopped", val=[2.0, 1.9, 1.95])
    failed = _log_scripted_run(mlflow_client, experiment_id, parent_id, 4, epochs=20, patience=3,
                               state="FAIL", train_status="diverged", val=[2.0, math.inf])
    _log_scripted_run(mlflow_client, experiment_id, parent_id, 5, epochs=6, patience=3,
                      state="COMPLETE", train_status="completed", val=[0.9, 0.8, 0.7, 0.6, 0.5, 0.45])
    mlflow_client.set_terminated(parent_id)

    table = load_trials(parent_id, tracking_uri=mlflow_uri).set_index("run_id")
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    expected = {  # run: (best_epoch, epochs_run, val_loss_rise, early_stop_saving)
        stopped: (6, 9, 0.44 / 0.4 - 1, 11 / 20),
        off: (6, 10, 0.7 / 0.5 - 1, math.nan),
        completed: (6, 6, 0.0, 0.0),
        pruned: (2, 3, 1.95 / 1.9 - 1, math.nan),
        failed: (1, 2, math.nan, math.nan),  # it diverged: its last loss measures no overfitting
    }
    for run_id, (best, run, rise, saving) in expected.items():
        row = table.loc[run_id]
        assert (row["best_epoch"], row["epochs_run"]) == (best, run), run_id
        assert row["val_loss_rise"] == pytest.approx(rise, nan_ok=True), run_id
        assert row["early_stop_saving"] == pytest.approx(saving, nan_ok=True), run_id
    # Epochs run past the best epoch are early stopping's patience, a setting: no column shows them.
    assert "overfit_epochs" not in table.columns
    assert table.loc[stopped, "generalization_gap"] == pytest.approx(0.4 - 0.32)
    assert math.isnan(table.loc[failed, "generalization_gap"])  # a diverged run logs none
    assert table.loc[stopped, "val_test_gap"] == pytest.approx(0.1)
    assert bool(table.loc[stopped, "early_stopped"]) and not bool(table.loc[completed, "early_stopped"])

    # Findings: groups of 2 tanh vs 2 relu finished trials support a sentence only when groups of
    # 2 are allowed; by default each group needs 5; 2 vs 1 supports none.
    trials = build_trials(load_sweep(mlflow_uri, sweep_id=parent_id))
    sentences = knob_findings(trials, min_group=2)
    assert any(s.startswith("model.activation = tanh (vs relu) lowered the median validation RMSE by 34% (better)")
               and s.endswith("(2 vs 2 finished trials).") for s in sentences), sentences
    assert knob_findings(trials) == []
    three = dataclasses.replace(trials, frame=trials.frame[trials.frame["trial"] <= 3])
    assert knob_findings(three, min_group=2) == []
    overall = overall_findings(trials)
    assert ("Early stopping ended 1 of 3 finished trials early, saving a median 0% of the epoch budget "
            "(55% among those it stopped).") in overall
    assert "1 finished trials ran without early stopping; they trained a median 4 epochs past their best " \
           "validation epoch." in overall
    # The measured rise, over the finished trials that trained past their best epoch (stopped and off; the others
    # peaked at their last); never that those epochs "fitted the training set", true by construction.
    assert ("In the 2 finished trials that trained past their best epoch, validation loss rose a median 25.0% by the "
            "last epoch (the most: trial 1, +40.0%).") in overall
    assert not any("fitted the training set" in s or "did not log" in s for s in overall), overall

    # The parent has no param_importances.json (the sweep never ended): the page says so, no figure.
    report = write_report(trials, tmp_path / "sweep", k=3)
    page = (tmp_path / "sweep" / "report.html").read_text(encoding="utf-8")
    for shown in (display_table(trials, trials.frame, knobs=True), display_table(trials, trials.top(3), knobs=False)):
        assert not {"overfit", "overfit_epochs", "patience"} & set(shown.columns), list(shown.columns)
        assert "rise" in shown.columns
    headers = set(re.findall(r"<th[^>]*>([^<]*)</th>", page))
    assert "rise" in headers and not any("overfit" in h or "patience" in h for h in headers), headers
    assert "overfit" not in report.table
    assert "No parameter importances: the sweep&#39;s parent run has no param_importances.json" in page
    assert page.count("<img ") == len(PLOTS) - 1 and not (tmp_path / "sweep" / "importances.json").exists()
    assert {p.name for p in report.files} == REPORT_FILES - {"importances.json", "importances.png"}

    # A plain run id is a one-row report, and not a sweep: no importances.
    single = load_trials(stopped, tracking_uri=mlflow_uri)
    assert list(single["run_id"]) == [stopped] and single.loc[0, "val_loss_rise"] == pytest.approx(0.1)
    write_report(build_trials(load_sweep(mlflow_uri, sweep_id=stopped)), tmp_path / "single")
    assert (f"No parameter importances: run {stopped} is a single run, not a sweep"
            in (tmp_path / "single" / "report.html").read_text(encoding="utf-8"))


def _scripted_sweep(client, name: str, rmse: list[tuple[float, float]], space: str | None = None,
                    lrs: list[float] | None = None) -> str:
    """A parent run (tagged ``sweeper.space`` when given) and one COMPLETE trial per (val_rmse, test_rmse)
    (with its ``lrs`` entry as optimizer.lr, when given)."""
    experiment_id = client.create_experiment(name)
    tags = {"sweeper.study": name, **({"sweeper.space": space} if space else {})}
    parent_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    for trial, pair in enumerate(rmse):
        _log_scripted_run(client, experiment_id, parent_id, trial, epochs=3, patience=3, state="COMPLETE",
                          train_status="completed", val=[1.0, 0.9, 0.8], rmse=pair, lr=lrs[trial] if lrs else None)
    client.set_terminated(parent_id)
    return parent_id


#: val_rmse of trials 0-4: trial 2 is the best (selected), trial 0 (the defaults) is not.
VAL_RMSE = (120.0, 110.0, 100.0, 130.0, 140.0)


@pytest.mark.parametrize("best_test,others_gap,sentence", [
    # Trial 0 and the best trial lose 7.5% and 8% on test: the split's doing, not the selection's.
    (108.0, 0.075, "The best trial (trial 2) has its test RMSE +8.0% against its validation RMSE, and the 4 other "
                   "finished trials' median is +7.5%: that gap comes with the validation/test split, not with "
                   "selecting on validation."),
    # The best trial loses 30%, the others 7.5%: selection flattered it.
    (130.0, 0.075, "Selecting on validation flattered the best trial (trial 2): its test RMSE is +30.0% against its "
                   "validation RMSE, where the 4 other finished trials' median is +7.5%."),
], ids=["shared by the split", "selection"])
def test_selection_is_blamed_only_when_the_best_trials_val_test_gap_exceeds_the_others(
        mlflow_uri, mlflow_client, best_test, others_gap, sentence):
    from sweeper.report.findings import overall_findings
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    rmse = [(v, best_test if v == min(VAL_RMSE) else v * (1 + others_gap)) for v in VAL_RMSE]
    trials = build_trials(load_sweep(mlflow_uri, sweep_id=_scripted_sweep(mlflow_client, "selection", rmse)))
    assert trials.top(1)["trial"].item() == 2
    found = overall_findings(trials)
    assert sentence in found, found
    assert sum("flattered" in s for s in found) == sentence.startswith("Selecting")


def _outside(fig) -> tuple | None:
    """Where a matplotlib figure's drawn artists reach beyond it (a label cut off in the PNG), as
    (x0, y0, x1, y1) in inches against the figure's size; None when everything is inside."""
    fig.canvas.draw()
    drawn, size = fig.get_tightbbox(fig.canvas.get_renderer()), fig.bbox_inches
    inside = drawn.x0 >= size.x0 - 0.01 and drawn.y0 >= size.y0 - 0.01 and drawn.x1 <= size.x1 + 0.01 \
        and drawn.y1 <= size.y1 + 0.01
    return None if inside else (*drawn.min, *drawn.max, "figure", *size.max)


def _assert_lr_axis_is_the_searched_log_range(fig, low: float, high: float) -> None:
    """The best-epoch figure's lr panel: a log-scaled number axis spanning [low, high], short tick labels."""
    ax = fig.axes[0]
    assert ax.get_title() == "optimizer.lr" and ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left <= low and high <= right < 10 * high
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and left <= t.get_position()[0] <= right]
    widths = [t.get_window_extent().width for t in labels]
    assert labels and max(widths) < 60, [(t.get_text(), w) for t, w in zip(labels, widths)]
    assert _outside(fig) is None, _outside(fig)


def test_a_log_searched_lr_is_drawn_on_a_log_axis_even_with_few_trials(mlflow_uri, mlflow_client):
    """Three trials with 17-digit learning rates: once three categories labelled with every digit."""
    import json

    from sweeper.report import plots
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    space = json.dumps({"optimizer.lr": {"low": 1e-4, "high": 0.1, "log": True}})
    lrs = [0.0019351140885595273, 0.007501954443620123, 0.01]
    parent_id = _scripted_sweep(mlflow_client, "lr_axis", [(100.0, 110.0)] * 3, space=space, lrs=lrs)
    trials = build_trials(load_sweep(mlflow_uri, sweep_id=parent_id))
    assert sorted(trials.params[r]["optimizer.lr"] for r in trials.params) == lrs
    assert trials.space == {"optimizer.lr": {"low": 1e-4, "high": 0.1, "log": True}}
    _assert_lr_axis_is_the_searched_log_range(plots.best_epoch_figure(trials), 1e-4, 0.1)


def test_the_sweeper_tags_its_searched_numbers_and_the_report_draws_lr_on_their_log_axis(sweep):
    import json

    from mlflow import MlflowClient

    from sweeper.report import plots
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    tagged = json.loads(MlflowClient(sweep["uri"]).get_run(sweep["parent"]).data.tags["sweeper.space"])
    # search=small: optimizer.lr tag(log, interval(1e-3, 0.1)), schedule.gamma interval(0.8, 0.99); choices left out
    assert tagged == {"optimizer.lr": {"low": 0.001, "high": 0.1, "log": True},
                      "schedule.gamma": {"low": 0.8, "high": 0.99, "log": False}}
    trials = build_trials(load_sweep(sweep["uri"], sweep_id=sweep["parent"]))
    _assert_lr_axis_is_the_searched_log_range(plots.best_epoch_figure(trials), 0.001, 0.1)


@pytest.mark.parametrize("style", ["default", "ggplot"])
def test_the_importances_plot_cuts_off_no_label(sweep, style):
    """The parent's importances, drawn again from the values it logged: every label inside the picture, in
    matplotlib's default style and in ggplot's, which Optuna's history plot leaves on in the process drawing both."""
    import json

    import matplotlib.style

    from sweeper.tracking import importances

    values = json.loads((sweep["out"] / "importances.json").read_text())
    with matplotlib.style.context(style):
        figure = importances.figure(values, "val_rmse")
        assert values["objective"] and _outside(figure) is None, _outside(figure)


@pytest.mark.parametrize("states,final", [
    (("FAIL", "PRUNED"), None),             # no COMPLETE trial
    (("COMPLETE", "COMPLETE"), math.nan),   # COMPLETE trials whose numbers are NaN
], ids=["no complete trial", "nan metrics"])
def test_a_sweep_without_a_usable_trial_gets_a_report_that_says_so(mlflow_uri, mlflow_client, tmp_path, states, final):
    from sweeper.report.__main__ import main

    experiment_id = mlflow_client.create_experiment("unusable")
    parent_id = mlflow_client.create_run(experiment_id, run_name="unusable",
                                         tags={"sweeper.study": "unusable"}).info.run_id
    for trial, state in enumerate(states):
        _log_scripted_run(mlflow_client, experiment_id, parent_id, trial, epochs=3, patience=3, state=state,
                          train_status="completed" if state == "COMPLETE" else "stopped", val=[1.0, 0.9, 0.8],
                          rmse=(final, final) if final is not None else None)
    mlflow_client.set_terminated(parent_id)

    out = tmp_path / "report"
    assert main(["--sweep", parent_id, "--tracking-uri", mlflow_uri, "--out", str(out), "--no-log"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "No finished trial." in page and "All 2 trials" in page
    said = ("0 of 2 trials completed; 1 pruned and 1 failed" if final is None
            else "No finished trial has a finite validation RMSE: none is ranked.")
    assert said in page


def test_runs_that_did_not_log_best_epoch_or_gap_get_empty_cells_and_a_note(mlflow_uri, mlflow_client, tmp_path):
    """Runs of an older sweeper, without best_epoch, epochs_run and generalization_gap: the report
    leaves those cells empty (it does not re-derive them from the curves) and says so."""
    from sweeper.report.build import write_report
    from sweeper.report.findings import overall_findings
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    experiment_id = mlflow_client.create_experiment("old_runs")
    parent_id = mlflow_client.create_run(experiment_id, run_name="old", tags={"sweeper.study": "old"}).info.run_id
    for trial in range(3):
        _log_scripted_run(mlflow_client, experiment_id, parent_id, trial, epochs=5, patience=3, state="COMPLETE",
                          train_status="completed", val=[1.0, 0.8, 0.7, 0.65, 0.6 + trial / 10],
                          old_sweeper=trial > 0)
    mlflow_client.set_terminated(parent_id)

    trials = build_trials(load_sweep(mlflow_uri, sweep_id=parent_id))
    frame = trials.frame.set_index("trial")
    assert list(frame["best_epoch"].isna()) == [False, True, True]
    assert frame.loc[0, "best_epoch"] == 5 and frame.loc[0, "generalization_gap"] == pytest.approx(0.12)
    unlogged = ["epochs_run", "val_loss_rise", "generalization_gap", "early_stop_saving"]
    assert frame.loc[[1, 2], unlogged].isna().all().all()
    note = ("Some finished runs did not log best_epoch (2 of 3), epochs_run (2 of 3), generalization_gap (2 of 3): "
            "their cells are empty and the statistics leave them out (runs logged by an older sweeper).")
    assert note in overall_findings(trials)
    report = write_report(trials, tmp_path / "report", k=3)
    assert note in report.findings and "–/–" in report.table


#: Appended to a copy of report.html: after load, writes how many <img> decoded, and any error.
_IMAGE_CHECK = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length;
  const p = document.createElement('p');
  p.id = 'image-check';
  p.textContent = `images=${imgs.length} decoded=${ok} errors=${window.__errors.length}`;
  document.body.appendChild(p);
});
</script>"""


#: Appended to a copy of report.html: after load (every <details> opened), writes the page's width and
#: each element whose content is wider than its box and cut off or scrolled (overflow not visible),
#: and the page itself when it is wider than the window.
_CLIP_CHECK = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const clipped = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) clipped.push(`page ${page.scrollWidth}>${page.clientWidth}`);
  for (const el of document.body.querySelectorAll('*')) {
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
      clipped.push(`${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth}>${el.clientWidth}`);
  }
  const p = document.createElement('p');
  p.id = 'clip-check';
  p.textContent = `width=${window.innerWidth} clipped=${clipped.length}: ${clipped.join('; ')}`;
  document.body.appendChild(p);
});
</script>"""


def test_html_opens_in_headless_chromium_with_every_plot(sweep, tmp_path):
    chromium = components.chromium()
    page = (sweep["out"] / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == len(PLOTS) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:|file:|//)', page), "the page must be self-contained"

    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", _IMAGE_CHECK + "</body>"), encoding="utf-8")
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*base, "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"images={len(PLOTS)} decoded={len(PLOTS)} errors=0" in dom.stdout, dom.stdout[-500:]

    # Nothing cut off or scrolled sideways at a laptop's width or half a desktop's: tables included.
    clip = tmp_path / "clip.html"
    clip.write_text(page.replace("</body>", _CLIP_CHECK + "</body>"), encoding="utf-8")
    for width in (1280, 800):
        dom = subprocess.run([*base, f"--window-size={width},2000", "--dump-dom", clip.as_uri()],
                             capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        found = re.search(r'<p id="clip-check">([^<]*)</p>', dom.stdout)
        assert found and found.group(1).startswith(f"width={width} clipped=0:"), found and found.group(1)

    shot = tmp_path / "report.png"
    subprocess.run([*base, "--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={shot}",
                    (sweep["out"] / "report.html").as_uri()], capture_output=True, timeout=120, check=True)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (4000, 1280)
    assert pixels[..., :3].std() > 0.05  # the page rendered content, not a blank canvas


def test_parent_run_lists_the_report_artifacts(sweep):
    from mlflow import MlflowClient

    client = MlflowClient(sweep["uri"])
    listed = {Path(a.path).name for a in client.list_artifacts(sweep["parent"], ARTIFACT_PATH)}
    assert REPORT_FILES <= listed
    assert {Path(p).name for p in os.listdir(sweep["out"])} == REPORT_FILES


@pytest.mark.parametrize("args,named", [(("--experiment", "no_such_experiment"), "no_such_experiment"),
                                        (("--sweep", "0123456789abcdef0123456789abcdef"), "0123456789abcdef")])
def test_unknown_experiment_or_sweep_is_one_clear_line(sweep, args, named):
    proc = _run("sweeper.report", *args, mlflow_uri=sweep["uri"], cwd=sweep["root"])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], proc.stderr
    assert proc.stdout == ""
