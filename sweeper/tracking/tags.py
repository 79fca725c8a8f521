"""The MLflow tag names this project writes and reads, declared once (see ../SPEC's "What lands
in MLflow"). Importing this module imports nothing else."""

STUDY_TAG = "sweeper.study"  # parent run: the Optuna study's name
SAMPLER_TAG = "sweeper.sampler"
PRUNER_TAG = "sweeper.pruner"
TRIAL_TAG = "sweeper.trial"  # child run: the Optuna trial number
STATE_TAG = "sweeper.state"  # COMPLETE | PRUNED | FAIL, as in Optuna
TRAIN_STATUS_TAG = "sweeper.train_status"  # completed | early_stopped | diverged | stopped
FAIL_REASON_TAG = "sweeper.fail_reason"  # one line, on every FAILED or KILLED run
RERUN_OF_TAG = "sweeper.rerun_of"
MODEL_OF_TAG = "sweeper.model_run_id"  # parent run: the trial run whose network is its model
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own
