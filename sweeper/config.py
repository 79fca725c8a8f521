"""The configuration's schema: every key and its type, and ``validate``, the one check of a config.

The values themselves live in ``conf/`` (``config.yaml`` and the ``data/`` and ``schedule/``
groups); the dataclasses here only type them. Hydra merges ``conf/`` into ``Config`` (stored in
Hydra's ConfigStore as ``base_config``), so a misspelt key or a value of the wrong type fails at
composition. ``validate`` then checks names and ranges, before any data is read, and raises
``ConfigError`` with one line naming the key and what is allowed. Each range is written once, in
the code the value configures: ``validate`` asks those constructors and checks
(``sweeper.nn``, ``sweeper.train``, ``sweeper.data``) and names the key of what they refuse.

Importing this module is cheap (no NumPy, pandas or MLflow): ``python -m sweeper --help`` loads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sweeper import DATA_DIR
from sweeper.errors import ConfigError, first_line, user_keys
from sweeper.overrides import not_bool

#: What a sweep may optimise, per task; test metrics are logged, never optimised. ``val_loss``
#: is the trainer's loss: ½·mean squared error of the scaled target, or the cross-entropy.
TASK_OBJECTIVES = {
    "regression": ("val_rmse", "val_mae", "val_r2", "val_loss"),
    "classification": ("val_log_loss", "val_accuracy", "val_f1_macro", "val_roc_auc", "val_loss"),
}
#: ``objective: auto`` (the default) is the task's first: val_rmse or val_log_loss.
OBJECTIVES = ("auto", *dict.fromkeys(TASK_OBJECTIVES["regression"] + TASK_OBJECTIVES["classification"]))


@dataclass
class MissingConfig:
    """``data.missing``: what a missing cell becomes (``sweeper.data.missing``)."""

    numeric: str = "median"  # median | mean | drop_rows | error
    categorical: str = "category"  # category | most_frequent | drop_rows | error
    indicator: bool = False  # a 0/1 <name>_missing input per numeric column with missing cells


@dataclass
class DataConfig:
    """``data`` group: which CSV, which column is the target, how columns are encoded."""

    name: Optional[str] = None  # experiment name by default; null = the CSV file's stem
    path: str = MISSING  # bundled sets: absolute via ${data_dir:...}; yours: relative to cwd
    target: str = MISSING
    task: str = "auto"  # auto | regression | classification (sweeper.data.target.resolve_task)
    features: Optional[List[str]] = None  # null = every column but the target and `drop`
    drop: List[str] = field(default_factory=list)  # columns left out
    categorical: List[str] = field(default_factory=list)  # one-hot (string columns detected too)
    max_categories: int = 50  # more distinct training values: the rest grouped as <other>
    target_scaling: str = "standard"  # standard | minmax | none | log (sweeper.data.target.TARGET_SCALINGS)
    missing: MissingConfig = field(default_factory=MissingConfig)
    sep: Optional[str] = None  # null = sniffed among , ; TAB |
    encoding: Optional[str] = None  # null = utf-8, falling back to latin-1
    na_values: List[str] = field(default_factory=list)  # tokens read as missing besides NA, empty, NaN, ...


@dataclass
class SplitConfig:
    test_size: float = MISSING
    val_size: float = MISSING
    shuffle: bool = MISSING
    seed: int = MISSING
    stratify: Any = "auto"  # auto (on for classification) | true | false
    folds: Any = 1  # auto | K: K >= 2 cross-validates over train + validation rows


@dataclass
class ModelConfig:
    hidden: List[int] = MISSING
    activation: str = MISSING
    output_activation: str = MISSING
    init: str = MISSING
    dtype: str = MISSING
    leaky_slope: float = 0.01
    elu_alpha: float = 1.0


@dataclass
class RegularizationConfig:
    l1: float = MISSING
    l2: float = MISSING
    dropout: float = MISSING
    max_norm: Optional[float] = None


@dataclass
class OptimizerConfig:
    lr: float = MISSING  # η₀: the learning-rate schedule's initial rate (the schedule owns the rate)
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class EarlyStoppingConfig:
    patience: Optional[int] = MISSING  # null = no early stopping
    min_delta: float = MISSING
    restore_best: bool = MISSING


@dataclass
class TrainConfig:
    epochs: int = MISSING
    batch_size: Optional[int] = MISSING  # null = full batch
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    divergence_factor: float = 1.0e4  # train loss > this × the untrained network's: diverged


@dataclass
class MlflowConfig:
    tracking_uri: Optional[str] = None  # null = $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db
    experiment: Optional[str] = None  # null = the dataset's name


@dataclass
class Config:
    """The root config: ``conf/config.yaml`` on top of this schema."""

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    # Each schedule has its own keys, so the node is typed per schedule by schedule_schema().
    schedule: Dict[str, Any] = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = MISSING
    objective: str = MISSING
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


ConfigStore.instance().store(name="base_config", node=Config)
# ${data_dir:x.csv} -> absolute path of a bundled dataset (a checkout's data/ or the installed
# package's copy), whatever the cwd.
if not OmegaConf.has_resolver("data_dir"):
    OmegaConf.register_new_resolver("data_dir", lambda name="": str(DATA_DIR / name))


# --- learning-rate schedules: one schema per ``schedule/`` option -----------------------------


@functools.cache
def schedule_schema(name: str) -> type:
    """The typed schema of schedule ``name``: its ``name`` and, all required, the keyword arguments
    (besides ``lr``) of its class in ``sweeper.nn.schedules``, with their annotated types: a
    schedule's keys are written once, in its class (the values in ``conf/schedule/<name>.yaml``)."""
    from sweeper.nn.schedules import SCHEDULES, schedule_keys

    hints = typing.get_type_hints(SCHEDULES[name].__init__)
    fields = [("name", str, dataclasses.field(default=name))]
    fields += [(key, hints[key], dataclasses.field(default=MISSING)) for key in schedule_keys(name)]
    title = "".join(part.title() for part in name.split("_"))
    return dataclasses.make_dataclass(f"{title}Schedule", fields)


# --- ranges: sweeper.data's checks name the key themselves; sweeper.nn's and sweeper.train's don't.


def _one_of(key: str, value: Any, names) -> None:
    if value not in names:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(names)}")


#: What null means for the range-checked keys that may be null, as their error line says it.
_NULL_MEANS = {
    "regularization.max_norm": "null",
    "train.batch_size": "null (full batch)",
    "train.early_stopping.patience": "null (off)",
}


@contextlib.contextmanager
def _named_by_keys(cfg: Any, keys: Dict[str, str]) -> Iterator[None]:
    """Turn a ``sweeper.nn`` RangeError raised inside into a ConfigError naming the config key
    ``keys[argument]``: ``optimizer.lr: 0.0 is out of range; allowed: a number > 0``.

    The allowed values are the error's range after "a number" or "an integer" (the value's
    type), behind what null means for a key that may be null; an argument the range mentions
    is written as its key and value (``in [0, lr]`` → ``in [0, optimizer.lr=0.01]``).
    """
    from sweeper.nn import RangeError

    def as_key(word: re.Match) -> str:
        name = word[0]
        return f"{keys[name]}={OmegaConf.select(cfg, keys[name]):g}" if name in keys else name

    try:
        yield
    except RangeError as error:
        key = keys[error.argument]
        kind = "an integer" if isinstance(error.value, int) else "a number"
        allowed = f"{kind} {re.sub(r'[a-z_]+', as_key, error.allowed)}"
        if key in _NULL_MEANS:
            allowed = f"{_NULL_MEANS[key]} or {allowed}"
        raise ConfigError(f"{key}: {error.value!r} is out of range; allowed: {allowed}") from None


def schedule_config(cfg_schedule: Any) -> DictConfig:
    """The ``schedule`` node typed by its schema: unknown keys and wrong types raise ConfigError."""
    from sweeper.nn.schedules import SCHEDULES

    name = cfg_schedule.get("name") if cfg_schedule is not None else None
    _one_of("schedule.name", name, tuple(SCHEDULES))
    schema = OmegaConf.structured(schedule_schema(name))
    try:
        typed = OmegaConf.merge(schema, cfg_schedule)
    except OmegaConfBaseException as error:
        key = getattr(error, "key", None) or getattr(error, "full_key", None) or "?"
        keys = [k for k in schema if k != "name"]
        raise ConfigError(
            f"schedule.{key}: {first_line(error)}; schedule {name!r} has keys: {', '.join(keys) or '(none)'}"
        ) from None
    for key, value in cfg_schedule.items():
        if isinstance(typed[key], bool) and not isinstance(value, bool):  # converted by a bool node
            raise not_bool(f"schedule.{key}", value)
    missing = [k for k in typed if OmegaConf.is_missing(typed, k)]
    if missing:
        raise ConfigError(f"schedule.{missing[0]}: no value set for schedule {name!r}")
    return typed


def _check_known_keys(node: Any, schema: type, prefix: str = "") -> None:
    """ConfigError naming the first key of ``node`` its ``schema`` dataclass lacks (a composed
    node's schema is its ``OmegaConf.get_type``).

    Hydra's ``+key=value`` adds a key the schema does not have (``+optimizer.lrr=0.1`` would run,
    unused, and be logged); ``+`` is meant for the sweeper's free-form kwargs dicts only.
    """
    allowed = user_keys(schema)
    for key in node:
        if prefix == "" and key == "hydra":
            continue
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key; allowed: {', '.join(allowed)}")
        kind = OmegaConf.get_type(node, key)
        if dataclasses.is_dataclass(kind) and isinstance(node[key], DictConfig):
            _check_known_keys(node[key], kind, f"{prefix}{key}.")


def validate(cfg: Any) -> None:
    """Check every value of a composed config; raise ConfigError naming the first bad key.

    The registries of ``sweeper.nn`` and ``sweeper.data`` are the allowed names; the objects a run
    builds from the config (schedule, optimiser, early stopping) are built here too, and what
    needs the data is checked by its owner's ``check_*`` function.
    """
    from sweeper.data import DTYPES as DATA_DTYPES, TARGET_SCALINGS, Missing, check_dialect, check_max_categories
    from sweeper.data import TASKS, check_folds, check_split, check_stratify
    from sweeper.nn import ACTIVATIONS, DTYPES, INITIALIZERS, OUTPUT_ACTIVATIONS, SGD, Network, make_schedule
    from sweeper.tracking.store import check_file_store, tracking_uri
    from sweeper.train import EarlyStopping, check_fit_arguments

    for key in ("path", "target"):
        if OmegaConf.is_missing(cfg.data, key):
            raise ConfigError(f"data.{key}: no value set; e.g. data=csv data.path=FILE data.target=COLUMN")
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{getattr(error, 'full_key', '') or 'config'}: {first_line(error)}") from None

    _check_known_keys(cfg, Config)
    uri = cfg.mlflow.tracking_uri  # a folder (MLflow's file store) is refused where MLflow refuses it
    if uri or os.environ.get("MLFLOW_TRACKING_URI"):
        check_file_store(tracking_uri(uri, create=False), "mlflow.tracking_uri" if uri else "MLFLOW_TRACKING_URI")
    if cfg.seed < 0:  # an integer: Config types it
        raise ConfigError(f"seed: {cfg.seed!r} is out of range; allowed: an integer >= 0")
    _one_of("objective", cfg.objective, OBJECTIVES)
    _one_of("data.task", cfg.data.task, TASKS)

    data = cfg.data
    _one_of("data.target_scaling", data.target_scaling, TARGET_SCALINGS)
    Missing(**data.missing)  # raises naming data.missing.<key>
    check_max_categories(data.max_categories)
    check_dialect(data.sep, data.encoding)

    check_split(cfg.split.test_size, cfg.split.val_size, cfg.split.seed)
    check_stratify(cfg.split.stratify)
    check_folds(cfg.split.folds)

    model, reg = cfg.model, cfg.regularization
    _one_of("model.activation", model.activation, ACTIVATIONS)
    # Which of them fits is known once the data says the task (`for_task`).
    _one_of("model.output_activation", model.output_activation, ("auto", *OUTPUT_ACTIVATIONS))
    _one_of("model.init", model.init, INITIALIZERS)
    _one_of("model.dtype", model.dtype, tuple(d for d in DTYPES if d in DATA_DTYPES))
    hidden = {f"sizes[{i + 1}]": f"model.hidden[{i}]" for i in range(len(model.hidden))}
    with _named_by_keys(cfg, {**hidden, "l1": "regularization.l1", "l2": "regularization.l2",
                              "dropout": "regularization.dropout", "max_norm": "regularization.max_norm",
                              "slope": "model.leaky_slope", "alpha": "model.elu_alpha"}):
        Network.check_arguments([1, *model.hidden, 1], l1=reg.l1, l2=reg.l2, dropout=reg.dropout,
                                max_norm=reg.max_norm)
        # Both, whatever model.activation is: a sweep may choose the other.
        ACTIVATIONS["leaky_relu"](model.leaky_slope)
        ACTIVATIONS["elu"](model.elu_alpha)

    opt, schedule = cfg.optimizer, schedule_config(cfg.schedule)
    schedule_keys = {key: schedule[key] for key in schedule if key != "name"}
    with _named_by_keys(cfg, {"lr": "optimizer.lr", "momentum": "optimizer.momentum",
                              **{key: f"schedule.{key}" for key in schedule_keys}}):
        SGD((), momentum=opt.momentum, nesterov=opt.nesterov)  # of no parameters: its settings checked
        make_schedule(schedule.name, opt.lr, **schedule_keys)  # optimizer.lr is the schedule's η₀

    train, stop = cfg.train, cfg.train.early_stopping
    with _named_by_keys(cfg, {"epochs": "train.epochs", "batch_size": "train.batch_size",
                              "divergence_factor": "train.divergence_factor",
                              "patience": "train.early_stopping.patience",
                              "min_delta": "train.early_stopping.min_delta"}):
        check_fit_arguments(train.epochs, train.batch_size, train.divergence_factor)
        # min_delta too when early stopping is off (patience null): a sweep may turn it on.
        EarlyStopping(patience=1 if stop.patience is None else stop.patience, min_delta=stop.min_delta)


# --- what the data decides ------------------------------------------------------------------


def objective_for(objective: str, task: str) -> str:
    """``objective`` for ``task`` (``auto``: val_rmse or val_log_loss); ConfigError for a metric
    of the other task."""
    if objective == "auto":
        return TASK_OBJECTIVES[task][0]
    if objective not in TASK_OBJECTIVES[task]:
        other = "classification" if task == "regression" else "regression"
        raise ConfigError(
            f"objective: {objective!r} is a {other} metric and data.task is {task}; allowed: auto, "
            + ", ".join(TASK_OBJECTIVES[task])
        )
    return objective


def output_activation_for(name: str, task: str, n_classes: int = 0) -> str:
    """``model.output_activation`` for ``task``; ConfigError for one that cannot give the task's
    outputs. ``auto`` is identity for regression; for classification sigmoid (one output) with 2
    classes, as scikit-learn's MLPClassifier, and softmax (K outputs) with more."""
    if task == "regression":
        allowed = ("identity", "tanh", "sigmoid")
        why = "softmax outputs class probabilities (classification)"
    else:
        allowed = ("sigmoid", "softmax") if n_classes == 2 else ("softmax",)
        why = f"a classifier of {n_classes} classes outputs probabilities"
    if name == "auto":
        return allowed[0]
    if name not in allowed:
        raise ConfigError(
            f"model.output_activation: {name!r} does not fit data.task={task} ({why}); allowed: auto, {', '.join(allowed)}"
        )
    return name


def for_task(cfg: DictConfig, task: str, n_classes: int, stratified: bool) -> DictConfig:
    """``cfg`` with what the data decided written in: ``data.task``, ``split.stratify``,
    ``objective`` and ``model.output_activation`` (so the logged config and params say what
    ran, and a rerun reads no ``auto``). ``cfg`` is a plain (not struct) resolved copy."""
    cfg.data.task = task
    cfg.split.stratify = stratified
    cfg.objective = objective_for(str(cfg.objective), task)
    cfg.model.output_activation = output_activation_for(str(cfg.model.output_activation), task, n_classes)
    return cfg


def load_data(cfg: DictConfig) -> Any:
    """The ``sweeper.data.Dataset`` that ``cfg``'s ``data`` and ``split`` keys describe (its
    ``data.path`` as given: a run makes a relative one absolute first). Each key but
    ``data.name`` is the `sweeper.data.load_dataset` argument of its name, as is ``model.dtype``."""
    from sweeper.data import Missing, load_dataset

    data, split = (OmegaConf.to_container(node, resolve=True) for node in (cfg.data, cfg.split))
    del data["name"]
    missing = Missing(**data.pop("missing"))
    return load_dataset(**data, **split, missing=missing, dtype=cfg.model.dtype)
