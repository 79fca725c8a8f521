"""Smoke test of benchmarks/sweep_overhead.py and the cold start of ``python -m sweeper --help``.

No timing assertions (the machine is shared): the benchmark's JSON has its keys, its numbers are
positive, and its parts add up to no more than the wall time; ``--help`` imports neither MLflow
nor matplotlib.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_reports_parts_that_fit_in_the_wall_time(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep_overhead.py"), "--quick", "--json"],
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


def test_help_imports_neither_mlflow_nor_matplotlib():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweeper", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "python -m sweeper" in done.stdout
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported  # the trace is really there
    assert not imported & {"mlflow", "matplotlib", "optuna"}, sorted(imported & {"mlflow", "matplotlib", "optuna"})
