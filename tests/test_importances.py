"""Parameter importances need no scikit-learn: the parent run's plot names Optuna's PED-ANOVA.

scikit-learn is a test extra, not a dependency. Before Optuna 5, ``plot_param_importances``
defaulted to fANOVA, which imports it; on a plain install the plot was silently skipped.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["sklearn"] = None  # an install without scikit-learn: importing it fails
    from pathlib import Path

    import optuna
    from optuna.importance import get_param_importances

    from sweeper.sweep.parent_run import _write_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    def objective(t):
        t.set_user_attr("metrics", {"generalization_gap": t.suggest_float("noise", 0.0, 1.0)})
        return (t.suggest_float("lr", 1e-4, 1.0, log=True) - 0.01) ** 2 + 1e-6 * t.params["noise"]

    study.optimize(objective, n_trials=24)
    try:
        get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator())
    except ImportError:
        print("fanova unavailable")
    _write_plots(study, ["val_rmse"], Path(sys.argv[1]))
""")


def test_the_parent_runs_importance_plot_is_drawn_without_scikit_learn(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fanova unavailable" in proc.stdout  # the block works: fANOVA really cannot run here
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "optimization_history.png", "param_importances.json", "param_importances.png"]
    import json

    values = json.loads((tmp_path / "param_importances.json").read_text())
    assert max(values["objective"], key=values["objective"].get) == "lr"
    assert max(values["generalization_gap"], key=values["generalization_gap"].get) == "noise"
