"""The MLflow tag names this project writes and reads, declared once (see ../SPEC's "What lands
in MLflow"). Importing this module imports nothing else."""

STUDY_TAG = "sweeper.study"  # parent run: the Optuna study's name
SAMPLER_TAG = "sweeper.sampler"
PRUNER_TAG = "sweeper.pruner"
SPACE_TAG = "sweeper.space"  # parent run: JSON {key: {"low", "high", "log"}} of each searched number
TRIAL_TAG = "sweeper.trial"  # child run: the Optuna trial number
STATE_TAG = "sweeper.state"  # COMPLETE | PRUNED | FAIL, as in Optuna
TRAIN_STATUS_TAG = "sweeper.train_status"  # completed | early_stopped | diverged | collapsed | stopped
FAIL_REASON_TAG = "sweeper.fail_reason"  # one line, on every FAILED or KILLED run
RERUN_OF_TAG = "sweeper.rerun_of"
MODEL_OF_TAG = "sweeper.model_run_id"  # parent run: the trial run whose network is its model
BEST_TRIAL_TAG = "sweeper.best_trial"  # parent run: the best trial's number
BEST_RUN_TAG = "sweeper.best_run_id"  # parent run: the best trial's run
PARETO_TAG = "sweeper.pareto_trials"  # parent run of a multi-objective study: the front's trials
GIT_DIRTY_TAG = "sweeper.git_dirty"  # true when the checkout had uncommitted changes
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own
RUN_NAME_TAG = "mlflow.runName"  # MLflow's own: set in a batch, it renames the run
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own
NOTE_TAG = "mlflow.note.content"  # MLflow's own: a run's or experiment's description
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI opens an experiment by its kind
MODEL_TRAINING = "custom_model_development"  # the kind that opens on the runs table
