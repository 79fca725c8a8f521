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
