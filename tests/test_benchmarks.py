"""The epoch-speed benchmark runs end to end and prints well-formed rows (no timing asserted)."""
import json
import subprocess
import sys

import pytest

from .paths import ROOT

pytest.importorskip("sklearn")

ROW_KEYS = {"dataset", "hidden", "batch", "dtype", "peer", "ours_ms", "peer_ms", "ratio", "limit_ms"}


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
