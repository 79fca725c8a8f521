"""The epoch-speed benchmark runs end to end and prints well-formed rows (no timing asserted)."""
import importlib.util
import json
import re
import subprocess
import sys

import pytest

from .paths import ROOT

ROW_KEYS = {"dataset", "hidden", "batch", "dtype", "peer", "ours_ms", "peer_ms", "ratio", "limit_ms"}


@pytest.mark.slow
def test_epoch_speed_quick_json_prints_one_positive_row_per_dataset_and_peer():
    """--quick covers car_prices (regression) and digits (softmax classification)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "epoch_speed.py"), "--quick", "--json", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    peers = {row["peer"] for row in rows}
    assert rows and peers >= {"sklearn"}
    assert sorted((row["dataset"], row["peer"]) for row in rows) == sorted(
        (dataset, peer) for dataset in ("car_prices", "digits") for peer in peers
    )
    for row in rows:
        assert set(row) == ROW_KEYS
        assert (row["hidden"], row["batch"], row["dtype"]) == (32, "32", "float64")
        assert row["ours_ms"] > 0 and row["peer_ms"] > 0 and row["limit_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["peer_ms"])
    assert "threads: 1" in done.stderr  # the thread count is stated
    # Each row's epoch is broken into parts, one line per dataset.
    breakdown = done.stderr.split("where our epoch goes", 1)[1].splitlines()
    assert [line.split()[0] for line in breakdown if line.split()[:1] in (["car_prices"], ["digits"])] == [
        "car_prices", "digits"]


def test_targets_are_judged_pass_or_miss_on_the_headline_case_only(capsys):
    epoch_speed = load_benchmark("epoch_speed")
    row = {"dataset": "diamonds", "hidden": 64, "batch": "256"}
    rows = [row | {"dtype": "float32", "peer": "sklearn", "ratio": 0.49},
            row | {"dtype": "float32", "peer": "torch", "ratio": 0.81},
            row | {"dtype": "float32", "peer": "torch", "ratio": 0.1, "hidden": 32},  # another case
            row | {"dtype": "float64", "peer": "torch", "ratio": 0.1}]  # no target against torch
    epoch_speed.print_targets(rows, file=sys.stdout)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == ["  ours/sklearn float32  0.49 <= 0.50  PASS",
                         "  ours/torch   float32  0.81 <= 0.80  MISS",
                         "  ours/sklearn float64  not measured"]
    epoch_speed.print_targets([rows[2]], file=sys.stdout)
    assert capsys.readouterr().out == ""


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (registered first: dataclasses
    look their module up)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_load_speed_prints_our_time_beside_sklearns_and_their_ratio():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "load_speed.py"), "--dataset", "car_prices",
                           "--repeats", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    ours, peer, ratio = (float(x) for x in re.findall(r"ours (\S+) ms, pandas \+ scikit-learn (\S+) ms, ratio (\S+) ",
                                                        line)[0])
    assert ours > 0 and peer > 0 and ratio == pytest.approx(ours / peer, abs=0.05 + ratio * 0.1)


@pytest.mark.slow
@pytest.mark.benchmark
def test_cv_selection_scores_a_sweep_a_plain_run_and_both_peers_on_one_table(tmp_path):
    """2 trials, 1 seed, 2 MLP-search candidates: a row per contender with a finite RMSE, the
    table's mean equal to its one seed, and the verdict line naming what was not run."""
    out = tmp_path / "cv.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cv_selection.py"), "--data", "penguins", "--seeds", "0",
         "--trials", "2", "--candidates", "2", "--variants", "single", "default", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert [(r["table"], r["seed"], r["name"]) for r in results] == [
        ("penguins", 0, name) for name in ("single", "default", "mlp-cv", "hgb")]
    for r in results:
        assert 0 < r["rmse"] < 2000 and r["seconds"] >= 0, r  # body mass in grams: std ~800
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.split()[:1] in
            (["single"], ["default"], ["mlp-cv"], ["hgb"])}
    assert {name: float(cells[0]) for name, cells in rows.items()} == {
        r["name"]: pytest.approx(r["rmse"], abs=0.05) for r in results}
    assert all(cells[0] == cells[1] for cells in rows.values())  # one seed: its mean is itself
    assert "folds not run; ensemble not run; single worse than default:" in done.stdout
    assert "penguins seed 0 single: rmse" in done.stderr  # progress as each sweep finishes
    assert list(tmp_path.iterdir()) == [out]  # the sweeps' files stayed in their own folders
