"""Parameter importances need no scikit-learn: the parent run's plot names Optuna's PED-ANOVA.

scikit-learn is a test extra, not a dependency. Before Optuna 5, ``plot_param_importances``
defaulted to fANOVA, which imports it; on a plain install the plot was silently skipped.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

#: A study whose objective depends on ``lr`` alone and whose gap on ``noise`` alone.
OBJECTIVE = textwrap.dedent("""
    def objective(t):
        t.set_user_attr("metrics", {"generalization_gap": t.suggest_float("noise", 0.0, 1.0)})
        return (t.suggest_float("lr", 1e-4, 1.0, log=True) - 0.01) ** 2 + 1e-6 * t.params["noise"]
""")

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["sklearn"] = None  # an install without scikit-learn: importing it fails
    from pathlib import Path

    import optuna
    from optuna.importance import get_param_importances

    from sweeper.tracking.study_plots import write_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    exec(sys.argv[2])
    study.optimize(objective, n_trials=24)
    try:
        get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator())
    except ImportError:
        print("fanova unavailable")
    write_plots(study, ["val_rmse"], Path(sys.argv[1]))
""")


def test_the_parent_runs_importance_plot_is_drawn_without_scikit_learn(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), OBJECTIVE], capture_output=True,
                          text=True, timeout=120, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fanova unavailable" in proc.stdout  # the block works: fANOVA really cannot run here
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "optimization_history.png", "param_importances.json", "param_importances.png"]
    import json

    values = json.loads((tmp_path / "param_importances.json").read_text())
    assert max(values["objective"], key=values["objective"].get) == "lr"
    assert max(values["generalization_gap"], key=values["generalization_gap"].get) == "noise"


def _study_and_parent(tmp_path: Path):
    import optuna
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    found: dict = {}
    exec(OBJECTIVE, found)
    study.optimize(found["objective"], n_trials=12)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run(client.create_experiment("plots", artifact_location=str(tmp_path / "artifacts")))
    return study, client, run.info.run_id


def _logged(client, run_id: str, folder: Path) -> dict:
    import json

    names = sorted(a.path for a in client.list_artifacts(run_id))
    values = json.loads(Path(client.download_artifacts(run_id, "param_importances.json", str(folder))).read_text())
    return {"artifacts": names, "importances": values}


def test_the_parent_runs_plots_drawn_in_the_drawing_process_are_those_drawn_here(tmp_path: Path, caplog) -> None:
    """The sweep's end hands its plots to the drawing process (an in-memory study of the same
    trials) while it logs the best model: the same artifacts and importances as drawn in place,
    and ``meanwhile`` ran."""
    from sweeper.launcher.processes import Drawer
    from sweeper.sweep import parent_run

    study, client, here = _study_and_parent(tmp_path / "a")
    parent_run.log_results(client, here, study, ["val_rmse"], None)
    _, client_b, there = _study_and_parent(tmp_path / "b")
    drawer = Drawer()
    try:
        with caplog.at_level("WARNING"):
            result = parent_run.log_results(client_b, there, study, ["val_rmse"], None, drawer.submit,
                                            meanwhile=lambda: "best model")
    finally:
        drawer.close()
    # Drawn there: no fallback warning (matplotlib's own deprecation notes aside).
    assert result == "best model" and not [r for r in caplog.records if r.name.startswith("sweeper")]
    expected = _logged(client, here, tmp_path / "here")
    assert expected["artifacts"] == ["optimization_history.png", "param_importances.json",
                                     "param_importances.png", "trials.csv"]
    assert _logged(client_b, there, tmp_path / "there") == expected


def test_plots_the_drawing_process_could_not_draw_are_drawn_here_with_one_warning(tmp_path: Path, caplog) -> None:
    from sweeper.launcher.processes import Drawer, ready
    from sweeper.sweep import parent_run
    from sweeper.tracking import study_plots

    study, client, run_id = _study_and_parent(tmp_path)
    drawer = Drawer()
    try:  # a study direction Optuna refuses: the call fails in the drawing process
        drawer.submit(ready).result(timeout=120)
        bad = drawer.submit(study_plots.write_plots_of_trials, study.trials, ["sideways"], ["val_rmse"], tmp_path)
        with caplog.at_level("WARNING"):
            parent_run.log_results(client, run_id, study, ["val_rmse"], None, lambda *args: bad)
    finally:
        drawer.close()
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name.startswith("sweeper")]
    assert warning.startswith("the parent run's plots are drawn in the sweep's process: the process drawing them "
                              "failed: ")
    assert _logged(client, run_id, tmp_path / "logged")["artifacts"] == [
        "optimization_history.png", "param_importances.json", "param_importances.png", "trials.csv"]


def test_the_drawing_process_is_forked_from_the_sweeper_and_ends_with_its_end_of_the_pipe() -> None:
    """Where a fork is safe, the drawing process is forked from the sweep's own process as the
    sweep starts (no fork server's interpreter and imports to wait for); it collects garbage
    (the sweep's start had turned the collector off), and it ends when the sweeper closes its end
    of the pipe, a copy of which the fork gave it. In a process of its own: a sweep starts with
    one thread, which a test process that ran others may not have."""
    import subprocess
    import sys

    script = """
import gc, os
from omegaconf import OmegaConf
from sweeper.launcher.local import LocalLauncher
from sweeper.launcher.processes import fork_context
assert fork_context() is not None, "the drawing process would come from the fork server here"
gc.disable()  # as the command's start-up leaves it while a sweep starts
launcher = LocalLauncher(n_jobs=1)
launcher.setup(hydra_context=None, task_function=print, config=OmegaConf.create({"hydra": {}}))
process = launcher.drawer.process
print(process is not None and process.is_alive())  # started with the sweep, not at its first call
print(launcher.drawer.submit(os.getppid).result(timeout=60) == os.getpid())
print(launcher.drawer.submit(gc.isenabled).result(timeout=60))
launcher.close(finished=True)  # nothing pending: it ends on end-of-file
process.join(timeout=30)
print(process.exitcode)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "0"]
