"""Our task function under the peer Hydra sweeper ``hydra-optuna-mlflow-sweeper`` (no pruning).

The peer plugin expects a task function that returns the objective as a float and reads two
keys it adds to every job's config (``+mlflow_parent_run_id``, ``+optuna_trial_number``). This
adapter is what a user of that plugin would write around our training: it calls the same
``sweeper.app.run`` as a trial of ours (same data loading, network, training, MLflow run with
params, per-epoch curves, final metrics, config.yaml, data.json, loss_curves.png, model.npz),
nested under the plugin's study run, and returns the objective (None for a FAIL run: the
plugin then records the trial as FAIL).

Outside our sweeper ``run`` takes a job for a single run and would log an MLflow Model on every
complete trial; a trial of our sweep does not (only the best, once), so this adapter turns that
off to keep the per-trial work the same.

Needs the plugin importable (``benchmarks/sweep_overhead.py`` installs it in a cache folder and
puts it on PYTHONPATH for this child only), then, e.g.:

    python benchmarks/peers/hydra_plugin_task.py -m hydra/sweeper=mlflow_optuna '~search' \\
        schedule=constant hydra.sweeper.optuna_config.n_trials=30 \\
        +trainer.logger.tracking_uri=sqlite:///mlruns/mlflow.db +trainer.logger.experiment_name=car_prices \\
        'model.activation=choice(relu,tanh)' 'optimizer.lr=tag(log,interval(1e-3,0.1))'
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig, open_dict

import sweeper.app
import sweeper.app.artifacts
from sweeper import CONF_DIR
from sweeper.tracking.tags import TRIAL_TAG

# Keys the peer plugin adds to each job's config (or that it reads its MLflow settings from):
# not ours, so they are taken out before our config validation sees them.
PEER_KEYS = ("mlflow_parent_run_id", "optuna_trial_number", "trainer")


def _no_model(*args, **kwargs) -> None:
    """A sweep's trial logs no MLflow Model (ours logs the best one once, at the end)."""


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def task(cfg: DictConfig) -> float | None:
    parent_run_id = cfg.get("mlflow_parent_run_id")
    number = cfg.get("optuna_trial_number")
    with open_dict(cfg):
        for key in PEER_KEYS:
            cfg.pop(key, None)
    tags = {TRIAL_TAG: str(number)}
    if parent_run_id:
        tags["mlflow.parentRunId"] = str(parent_run_id)
    sweeper.app.artifacts.log_run_model = _no_model
    result = sweeper.app.run(cfg, run_name=f"trial-{number}", tags=tags)
    if result["state"] != sweeper.app.COMPLETE:
        return None
    return float(result["metrics"][result["objective"]])


if __name__ == "__main__":
    task()
