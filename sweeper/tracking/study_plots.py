"""A sweep's plots, drawn from its Optuna study when it ends and logged to its parent run:
Optuna's optimisation history (and Pareto front), and the parameter importances
(:mod:`sweeper.tracking.importances`)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna

from sweeper.tracking import importances

log = logging.getLogger(__name__)


def _plot(fn: Any, path: Path, **kwargs: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        ax = fn(**kwargs)
    except Exception as err:  # e.g. importances need two completed trials
        log.info("skipped %s: %s", path.name, str(err).splitlines()[0] if str(err) else type(err).__name__)
    else:
        figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        figure.set_size_inches(9, 5.5)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close("all")


def write_plots_of_trials(trials: list[optuna.trial.FrozenTrial], directions: list[Any], objectives: list[str],
                           out: Path) -> list[tuple[str, int, str]]:
    """In the drawing process or a worker: ``write_plots`` of an in-memory study holding
    ``trials`` (all of them, so their numbers stay), and the log records it made, for the sweep
    to log."""
    keep, logger = logging.handlers.BufferingHandler(capacity=sys.maxsize), logging.getLogger("sweeper")
    keep.setLevel(logging.INFO)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a worker process's own log set-up (its last job's) stays out of it
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(directions=directions)
        study.add_trials(trials)
        write_plots(study, objectives, out)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
        logger.propagate = propagate
    return [(r.name, r.levelno, r.getMessage()) for r in keep.buffer]


def write_plots(study: optuna.Study, objectives: list[str], out: Path) -> None:
    """The sweep's plots of ``study`` into ``out``: Optuna's optimisation history (and Pareto
    front), and the parameter importances (``importances``: their JSON and chart)."""
    from optuna.visualization import matplotlib as vis

    target = {"target": lambda t: t.values[0], "target_name": objectives[0]} if len(objectives) > 1 else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib backend is "experimental"
        _plot(vis.plot_optimization_history, out / "optimization_history.png", study=study, **target)
        if len(objectives) > 1:
            _plot(vis.plot_pareto_front, out / "pareto_front.png", study=study, target_names=objectives)
    # One importance answer for the sweep: PED-ANOVA on its COMPLETE trials, for the first
    # objective and for the gap, kept as JSON that sweeper.report shows as it is.
    values = importances.of_study(study, objectives)
    (out / importances.JSON).write_text(json.dumps(values, indent=2) + "\n")
    importances.figure(values, objectives[0]).savefig(out / importances.PNG, dpi=100)
