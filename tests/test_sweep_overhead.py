"""Smoke test of benchmarks/sweep_overhead.py and the cold start of ``python -m sweeper --help``.

No timing assertions (the machine is shared): the benchmark's JSON has its keys, its numbers are
positive, and its parts add up to no more than the wall time; the peers run the same budget; the
hand-written peer searches our default space; ``--help`` imports neither MLflow nor matplotlib.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "sweep_overhead.py"


@pytest.mark.slow
def test_quick_benchmark_reports_parts_that_fit_in_the_wall_time(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--json", "--no-peers"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    sweep, help_ = report["sweep"], report["help"]
    for key in ("wall_seconds", "train_seconds", "training_seconds", "overhead_seconds",
                "overhead_fraction", "overhead_per_trial_seconds"):
        assert sweep[key] > 0, key
    assert sweep["trials"] == 3 and sum(sweep["states"].values()) == 3
    parts = sweep["parts_seconds"]
    for part in ("hydra_job", "data", "training", "mlflow_run", "mlflow_params", "mlflow_metrics",
                 "plot", "artifact_files", "artifact_upload", "optuna_ask_tell", "sweep_start"):
        assert parts[part] > 0, part
    assert all(seconds >= 0 for seconds in parts.values())
    assert sum(parts.values()) <= sweep["wall_seconds"] * 1.001
    assert sweep["training_seconds"] <= sweep["train_seconds"]
    assert help_["median_seconds"] > 0 and len(help_["runs_seconds"]) == 3
    assert set(report["contenders"]) == {"ours"}


@pytest.mark.slow
@pytest.mark.benchmark
def test_quick_benchmark_runs_each_peer_on_the_same_trials_and_epochs(tmp_path):
    """Ours, the plain Optuna + MLflow script and the peer Hydra plugin (installed by
    ``make bench``) each finish 3 trials of at most 5 epochs, with every column of the table."""
    command = [sys.executable, str(BENCHMARK), "--quick", "--json"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    summary = report["contenders"]
    assert list(summary) == ["ours", "script", "plugin"]
    for name, row in summary.items():
        assert row["trials"] == 3 and sum(row["states"].values()) == 3, name
        assert 0 < row["epochs_trained"] <= 15, name
        assert 0 < row["training_seconds"] < row["wall_seconds"], name
        assert row["framework_ms_per_trial"] > 0, name
        assert 0 < row["launch_to_first_trial_seconds"] < row["wall_seconds"], name
        assert row["parts_ms_per_trial"]["training"] > 0, name
    assert summary["plugin"]["parts_ms_per_trial"]["plugin_sweep"] > 0  # its sweep loop was the one that ran
    assert [target["pass"] in (True, False) for target in report["targets"]] == [True] * 3
    assert report["sweep"] == report["runs"]["ours"][0]


class _RecordingTrial:
    """Stands in for an optuna.Trial: records each suggestion and answers the first choice."""

    def __init__(self):
        self.asked = {}

    def suggest_categorical(self, name, choices):
        self.asked[name] = ("choice", list(choices))
        return choices[0]

    def suggest_float(self, name, low, high, log=False):
        self.asked[name] = ("interval", [low, high], log)
        return low


def test_plain_script_searches_the_default_space_with_the_schedule_fixed():
    path = ROOT / "benchmarks" / "peers" / "plain_optuna_mlflow.py"
    spec = importlib.util.spec_from_file_location("plain_optuna_mlflow", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    trial = _RecordingTrial()
    script.suggest(trial)
    params = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "search" / "default.yaml"))["params"]
    expected = {}
    for override in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]):
        key = override.get_key_element()
        if key.split(".")[0] == "schedule":
            continue
        if override.is_choice_sweep():
            expected[key] = ("choice", list(override.sweep_iterator()))
        else:
            interval = override.value()
            expected[key] = ("interval", [interval.start, interval.end], "log" in interval.tags)
    asked = {}
    for name, found in trial.asked.items():
        key = next(key for key in expected if key.split(".")[-1] == name or key == f"model.{name}")
        if name == "hidden":
            found = ("choice", [script.HIDDEN[choice] for choice in found[1]])
        asked[key] = found
    assert asked == expected


@pytest.mark.slow
def test_help_imports_neither_mlflow_nor_matplotlib():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweeper", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "python -m sweeper" in done.stdout
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported  # the trace is really there
    assert not imported & {"mlflow", "matplotlib", "optuna"}, sorted(imported & {"mlflow", "matplotlib", "optuna"})
