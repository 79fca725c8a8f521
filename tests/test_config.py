"""The config contract: groups, keys, one-place validation, and where paths and stores resolve."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweeper import PROJECT_ROOT
from sweeper.config import OBJECTIVES, TASK_OBJECTIVES, objective_for, output_activation_for, validate
from sweeper.errors import ConfigError
from sweeper.nn import SCHEDULES, schedule_keys
from sweeper.tracking import experiment_name, get_or_create_experiment, tracking_uri

CONF = PROJECT_ROOT / "conf"


def test_default_config_validates_and_points_at_the_bundled_csv(compose):
    cfg = compose()
    validate(cfg)
    assert Path(cfg.data.path) == PROJECT_ROOT / "data" / "car_prices.csv"
    assert cfg.split.seed == cfg.seed and cfg.objective == "auto"  # val_rmse once the data says regression
    assert experiment_name(cfg) == "car_prices"


def test_bundled_dataset_path_does_not_depend_on_the_working_directory(compose, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose("data=diamonds")
    assert Path(cfg.data.path).is_file()


def test_a_dataset_sets_its_own_defaults_and_the_command_line_still_wins(compose):
    """conf/data/diamonds.yaml's batch of 128 (at 32 its default network collapsed): it overrides
    conf/config.yaml's 32 because `_self_` comes before the groups, and a command line's value wins."""
    assert compose("data=diamonds").train.batch_size == 128
    assert compose("data=diamonds", "train.batch_size=32").train.batch_size == 32
    assert compose().train.batch_size == compose("data=penguins").train.batch_size == 32


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_each_schedule_file_has_the_keys_and_defaults_of_its_schedule_class(name, compose):
    on_disk = OmegaConf.load(CONF / "schedule" / f"{name}.yaml")
    assert on_disk.name == name
    assert sorted(k for k in on_disk if k != "name") == sorted(schedule_keys(name))
    defaults = {k: p.default for k, p in inspect.signature(SCHEDULES[name].__init__).parameters.items()
                if k in schedule_keys(name)}
    assert {k: on_disk[k] for k in schedule_keys(name)} == defaults  # python -m sweeper == the library
    validate(compose(f"schedule={name}"))


@pytest.mark.parametrize(
    "schedule, override, says",
    [
        ("step", "schedule.step_size=2.5", "schedule.step_size: Value '2.5' of type 'float' could not be converted to Integer"),
        ("cosine", "schedule.warm_restarts=maybe", "schedule.warm_restarts: Value 'maybe' is not a valid bool"),
    ],
)
def test_schedule_keys_are_typed_as_their_class_annotates_them(schedule, override, says, compose):
    with pytest.raises(ConfigError) as error:
        validate(compose(f"schedule={schedule}", override))
    assert str(error.value).startswith(says), str(error.value)


def test_schedule_groups_and_data_groups_are_the_documented_options():
    assert sorted(p.stem for p in (CONF / "schedule").glob("*.yaml")) == sorted(SCHEDULES)
    assert sorted(p.stem for p in (CONF / "data").glob("*.yaml")) == [
        "car_prices", "csv", "diamonds", "digits", "penguins", "penguins_species"]


@pytest.mark.parametrize(
    "overrides, key, allowed",
    [
        (["model.activation=swish"], "model.activation", "leaky_relu"),
        (["model.output_activation=relu"], "model.output_activation", "sigmoid"),
        (["model.init=glorot"], "model.init", "xavier"),
        (["model.dtype=float16"], "model.dtype", "float32"),
        (["model.hidden=[64,0]"], "model.hidden[1]", ">= 1"),
        (["regularization.l1=-1"], "regularization.l1", ">= 0"),
        (["regularization.l2=-0.5"], "regularization.l2", ">= 0"),
        (["regularization.dropout=1"], "regularization.dropout", "[0, 1)"),
        (["regularization.max_norm=0"], "regularization.max_norm", "> 0"),
        (["optimizer.lr=0"], "optimizer.lr", "> 0"),
        (["optimizer.momentum=1"], "optimizer.momentum", "[0, 1)"),
        (["split.test_size=0"], "split.test_size", "(0, 1)"),
        (["split.test_size=0.5", "split.val_size=0.5"], "split.test_size + split.val_size", "below 1"),
        (["train.epochs=0"], "train.epochs", ">= 1"),
        (["train.batch_size=0"], "train.batch_size", "full batch"),
        (["train.early_stopping.patience=0"], "train.early_stopping.patience", "null (off)"),
        (["train.early_stopping.min_delta=-1"], "train.early_stopping.min_delta", ">= 0"),
        (["objective=test_rmse"], "objective", "val_rmse"),
        (["seed=-3"], "seed", ">= 0"),
        (["data.target_scaling=sqrt"], "data.target_scaling", "minmax, none, log"),
        (["schedule=step", "schedule.gamma=1.5"], "schedule.gamma", "(0, 1]"),
        (["schedule=step", "schedule.step_size=0"], "schedule.step_size", ">= 1"),
        (["schedule=plateau", "schedule.factor=1"], "schedule.factor", "(0, 1)"),
        (["schedule=cosine", "schedule.min_lr=1"], "schedule.min_lr", "optimizer.lr"),
        # The ranges of LeakyReLU and of fit, which validate once let through (1.5) or wrote itself.
        (["model.leaky_slope=1.5"], "model.leaky_slope", "[0, 1)"),
        (["train.divergence_factor=1"], "train.divergence_factor", "> 1"),
        (["split.seed=-1"], "split.seed", ">= 0"),
        # Checked with early stopping off too: a sweep may turn it on.
        (["train.early_stopping.patience=null", "train.early_stopping.min_delta=-1"],
         "train.early_stopping.min_delta", ">= 0"),
        (["schedule=cosine", "schedule.period=abc"], "schedule.period", "period"),
        (["data=csv"], "data.path", "data.path=FILE"),
    ],
)
def test_out_of_range_values_fail_with_one_line_naming_key_and_allowed_values(compose, overrides, key, allowed):
    cfg = compose(*overrides)
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    message = str(error.value)
    assert message.startswith(f"{key}:") and allowed in message and "\n" not in message


def test_every_objective_is_a_validation_metric_of_its_task():
    assert OBJECTIVES[0] == "auto" and all(name.startswith("val_") for name in OBJECTIVES[1:])
    assert objective_for("auto", "regression") == "val_rmse"
    assert objective_for("auto", "classification") == "val_log_loss"
    for task, other in (("regression", "classification"), ("classification", "regression")):
        for name in set(TASK_OBJECTIVES[other]) - set(TASK_OBJECTIVES[task]):
            with pytest.raises(ConfigError, match=f"^objective: '{name}' is a {other} metric and data.task is {task}"):
                objective_for(name, task)


@pytest.mark.parametrize("name, task, n_classes, resolved", [
    ("auto", "regression", 0, "identity"), ("tanh", "regression", 0, "tanh"),
    ("auto", "classification", 2, "sigmoid"), ("softmax", "classification", 2, "softmax"),
    ("auto", "classification", 10, "softmax"),
    ("softmax", "regression", 0, None), ("identity", "classification", 2, None), ("sigmoid", "classification", 3, None),
])
def test_output_activation_auto_follows_the_task(name, task, n_classes, resolved):
    if resolved is None:
        with pytest.raises(ConfigError, match=f"^model.output_activation: '{name}' does not fit data.task={task}"):
            output_activation_for(name, task, n_classes)
    else:
        assert output_activation_for(name, task, n_classes) == resolved


def test_tracking_uri_prefers_explicit_value_then_env_then_project_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(None) == f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/env/mlflow.db")
    assert tracking_uri(None) == f"sqlite:///{tmp_path}/env/mlflow.db"
    assert (tmp_path / "env").is_dir()  # SQLite cannot create the folder itself
    assert tracking_uri("http://mlflow.example:5000") == "http://mlflow.example:5000"


def test_relative_sqlite_uri_is_anchored_at_the_project_root_not_the_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri("sqlite:///mlruns/mlflow.db") == f"sqlite:///{PROJECT_ROOT}/mlruns/mlflow.db"


def test_experiment_creation_survives_a_concurrent_creator(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    class LateClient:
        """Sees no experiment, then loses the race to create it to another process."""

        def __init__(self, client):
            self._client, self._looked = client, False

        def __getattr__(self, name):
            return getattr(self._client, name)

        def get_experiment_by_name(self, name):
            if not self._looked:
                self._looked = True
                MlflowClient(mlflow_uri).create_experiment(name)  # the other process wins
                return None
            return self._client.get_experiment_by_name(name)

    client = MlflowClient(mlflow_uri)
    experiment_id = get_or_create_experiment(LateClient(client), "race")
    assert experiment_id == client.get_experiment_by_name("race").experiment_id
    assert get_or_create_experiment(client, "fresh") != experiment_id
    location = client.get_experiment_by_name("fresh").artifact_location
    assert location == (tmp_path / "mlruns" / "artifacts").as_uri()


def test_experiment_tags_survive_a_concurrent_tagger(mlflow_uri):
    """Two workers start on a new experiment: the loser of the creation race reads it before the
    winner's tags are in, and a server on PostgreSQL refuses the loser's insert of the same tag
    (seen: ``UniqueViolation … "tag_pk"``). The experiment is there, tagged: no error."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    class RacedClient:
        """Another process sets each tag between this one's read and its write."""

        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            return getattr(self._client, name)

        def set_experiment_tag(self, experiment_id, key, value):
            MlflowClient(mlflow_uri).set_experiment_tag(experiment_id, key, value)  # the other process wins
            raise MlflowException('(psycopg2.errors.UniqueViolation) duplicate key value violates unique '
                                  'constraint "tag_pk"')

    client = MlflowClient(mlflow_uri)
    experiment_id = client.create_experiment("raced")  # created, its tags not yet in
    assert get_or_create_experiment(RacedClient(client), "raced", "a description") == experiment_id
    tags = client.get_experiment(experiment_id).tags
    assert tags["mlflow.note.content"] == "a description" and "mlflow.experimentKind" in tags

    class ReadOnlyClient(RacedClient):
        def set_experiment_tag(self, experiment_id, key, value):
            raise MlflowException("attempt to write a readonly database")

    client.create_experiment("untagged")
    with pytest.raises(MlflowException, match="readonly"):
        get_or_create_experiment(ReadOnlyClient(client), "untagged", "a description")


def test_help_lists_the_config_groups_and_cfg_job_prints_the_config(run_cli):
    help_text = run_cli("--help")
    assert help_text.returncode == 0
    for line in ("data: car_prices, csv, diamonds", "schedule: constant, cosine, exponential"):
        assert line in help_text.stdout
    job = run_cli("--cfg", "job", "model.activation=tanh")
    assert job.returncode == 0
    printed = OmegaConf.create(job.stdout)
    assert printed.model.activation == "tanh" and printed.data.name == "car_prices"


def _no_password_variables(monkeypatch) -> None:
    for name in ("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")  # so that the test's end restores the variable, set or not
        monkeypatch.delenv(name)


def test_a_store_that_cannot_be_read_is_one_line_without_its_password(monkeypatch):
    from sweeper.errors import SweeperError
    from sweeper.tracking import existing_store
    from tests.servers import free_port

    _no_password_variables(monkeypatch)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    port = free_port()
    with pytest.raises(SweeperError) as caught:
        existing_store(f"http://user:s3cret@127.0.0.1:{port}")
    message = str(caught.value)
    assert message.startswith(f"--tracking-uri http://127.0.0.1:{port}: cannot read it")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("url, safe, environment", [
    ("postgresql+psycopg2://u:p%40ss@db:5432/mlflow", "postgresql+psycopg2://u@db:5432/mlflow", {"PGPASSWORD": "p@ss"}),
    ("http://bob:p%3Ass@mlflow:5000", "http://mlflow:5000",
     {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "p:ss"}),
    ("https://bob:pw@mlflow.example/path", "https://mlflow.example/path",
     {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "pw"}),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db", {}),
    ("http://mlflow:5000", "http://mlflow:5000", {}),
    # Typed as they are: the userinfo ends at the last @, a # before the host is the password's.
    ("postgresql+psycopg2://u:p@s#s/:x@db:5432/mlflow?sslmode=prefer", "postgresql+psycopg2://u@db:5432/mlflow?sslmode=prefer",
     {"PGPASSWORD": "p@s#s/:x"}),
    ("postgresql://u:a#b@db/optuna", "postgresql://u@db/optuna", {"PGPASSWORD": "a#b"}),
    ("http://bob:p#w@d@mlflow:5000/", "http://mlflow:5000/",
     {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "p#w@d"}),
    ("postgresql://u@db/optuna?application_name=a@b", "postgresql://u@db/optuna?application_name=a@b", {}),
])
def test_a_password_moves_from_the_url_to_the_variable_its_client_reads(monkeypatch, url, safe, environment):
    from sweeper.tracking.store import without_password

    _no_password_variables(monkeypatch)
    assert without_password(url, "mlflow.tracking_uri") == safe
    for name, value in environment.items():
        assert os.environ[name] == value


def test_a_password_that_disagrees_with_the_environment_is_one_line_naming_the_key(monkeypatch):
    from sweeper.errors import ConfigError
    from sweeper.tracking.store import without_password

    monkeypatch.setenv("PGPASSWORD", "other")
    with pytest.raises(ConfigError) as caught:
        without_password("postgresql://u:s3cret@db/optuna", "hydra.sweeper.storage")
    assert str(caught.value).startswith("hydra.sweeper.storage=postgresql://u@db/optuna: ")
    assert "s3cret" not in str(caught.value)


def test_a_password_no_variable_can_carry_is_refused_in_one_line_naming_the_key():
    from sweeper.errors import ConfigError
    from sweeper.tracking.store import without_password

    with pytest.raises(ConfigError) as caught:
        without_password("mysql+pymysql://u:s3@cret@db/optuna", "hydra.sweeper.storage")
    assert str(caught.value).startswith("hydra.sweeper.storage=mysql+pymysql://u@db/optuna: a password in a mysql URL")
    assert "s3" not in str(caught.value) and "cret" not in str(caught.value)


def test_the_command_line_loses_its_passwords_before_hydra_reads_it(monkeypatch):
    from sweeper.cli import without_passwords

    for name in ("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")  # so that the test's end restores the variable, set or not
        monkeypatch.delenv(name)
    args = ["-m", "mlflow.tracking_uri='http://bob:pw1@h:5000'", "++hydra.sweeper.storage=postgresql://u:pw2@db/o",
            "model.activation=tanh", "mlflow.experiment=postgresql://u:pw3@db/o"]
    assert without_passwords(args) == ["-m", "mlflow.tracking_uri='http://h:5000'",
                                       "++hydra.sweeper.storage=postgresql://u@db/o", "model.activation=tanh",
                                       "mlflow.experiment=postgresql://u:pw3@db/o"]
    assert (os.environ["MLFLOW_TRACKING_PASSWORD"], os.environ["PGPASSWORD"]) == ("pw1", "pw2")


def test_a_command_starts_without_the_collector_and_freezes_its_start_once_the_work_starts(monkeypatch):
    import gc
    import sys

    from sweeper import cli
    from sweeper.launcher import processes

    monkeypatch.setattr(sys, "argv", ["sweeper"])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # run_main sets it: the test's end restores it
    seen = {}
    # The freezes counted as calls: the frozen generation's size also shrinks whenever a frozen
    # object is freed (another thread of this process may free one at any time).
    freezes = []
    freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: (freezes.append(1), freeze()))

    def main():
        seen["collecting while starting"] = gc.isenabled()
        processes.start_up_done()
        seen["collecting once working"] = gc.isenabled()
        seen["start frozen"] = len(freezes) == 1 and gc.get_freeze_count() > 0
        processes.start_up_done()  # a sweep's in-process job calls it again: nothing more happens
        seen["frozen again"] = len(freezes) != 1

    try:
        cli.run_command(main)
        left_frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
        gc.enable()
    assert seen == {"collecting while starting": False, "collecting once working": True,
                    "start frozen": True, "frozen again": False}
    assert left_frozen > 0  # the objects left at the end skip the interpreter's final pass
    processes.start_up_done()  # outside a command (a test, sweeper.rerun's in-process run): nothing
    assert gc.isenabled() and gc.get_freeze_count() == 0
