"""The MLflow tag names this project writes and reads, declared once (see ../SPEC's "What lands
in MLflow"), and the names its final metrics are logged under. Importing this module imports
nothing else."""

STUDY_TAG = "sweeper.study"  # parent run: the Optuna study's name
SAMPLER_TAG = "sweeper.sampler"
PRUNER_TAG = "sweeper.pruner"
SPACE_TAG = "sweeper.space"  # parent run: JSON {key: {"low", "high", "log"}} of each searched number
TRIAL_TAG = "sweeper.trial"  # child run: the Optuna trial number
STATE_TAG = "sweeper.state"  # COMPLETE | PRUNED | FAIL, as in Optuna
TRAIN_STATUS_TAG = "sweeper.train_status"  # completed | early_stopped | diverged | collapsed | stopped
FAIL_REASON_TAG = "sweeper.fail_reason"  # one line, on every FAILED or KILLED run
RERUN_OF_TAG = "sweeper.rerun_of"
MODEL_OF_TAG = "sweeper.model_run_id"  # parent run: the trial run(s, comma-separated) whose networks are its model
BEST_TRIAL_TAG = "sweeper.best_trial"  # parent run: the best trial's number
BEST_RUN_TAG = "sweeper.best_run_id"  # parent run: the best trial's run
PARETO_TAG = "sweeper.pareto_trials"  # parent run of a multi-objective study: the front's trials
GIT_DIRTY_TAG = "sweeper.git_dirty"  # true when the checkout had uncommitted changes
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own
RUN_NAME_TAG = "mlflow.runName"  # MLflow's own: set in a batch, it renames the run
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own
SOURCE_NAME_TAG = "mlflow.source.name"  # MLflow's own: the UI's Source column (the command that ran)
SOURCE_TYPE_TAG = "mlflow.source.type"  # MLflow's own: LOCAL
USER_TAG = "mlflow.user"  # MLflow's own: the UI's User column
NOTE_TAG = "mlflow.note.content"  # MLflow's own: a run's or experiment's description
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # the experiment's kind in MLflow 3 (3.17's UI opens on the view the address says: ui_links)
MODEL_TRAINING = "custom_model_development"  # the kind that opens on the runs table

#: A run's final metric whose name is also a per-epoch curve's is logged under the model's name,
#: so every curve has one point per epoch (its latest value is its last epoch's) and the final
#: network's value (the best epoch's, when restored) is a metric of its own.
LOGGED_AS = {"val_loss": "model_val_loss", "val_accuracy": "model_val_accuracy"}


def final_metric(metrics: dict[str, float], name: str, default: float = float("nan")) -> float:
    """The final value of metric ``name`` among a run's logged ``metrics``, under the name it is
    logged as (``val_loss`` -> ``model_val_loss``); runs logged before that name read as before."""
    return metrics.get(LOGGED_AS.get(name, name), metrics.get(name, default))
