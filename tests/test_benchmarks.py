"""The epoch-speed benchmark runs end to end and prints well-formed rows (no timing asserted)."""
import json
import subprocess
import sys

import pytest

from .paths import ROOT

pytest.importorskip("sklearn")

ROW_KEYS = {"dataset", "hidden", "batch", "dtype", "peer", "ours_ms", "peer_ms", "ratio", "limit_ms"}


def test_epoch_speed_quick_json_prints_one_positive_row_per_peer():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "epoch_speed.py"), "--quick", "--json", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows and {row["peer"] for row in rows} >= {"sklearn"}
    for row in rows:
        assert set(row) == ROW_KEYS
        assert (row["dataset"], row["hidden"], row["batch"]) == ("car_prices", 32, "32")
        assert row["ours_ms"] > 0 and row["peer_ms"] > 0 and row["limit_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["peer_ms"])
    assert "threads: 1" in done.stderr  # the thread count is stated
