"""``python -m sweeper.rerun RUN_ID [--check]``: train a logged run again from its own config.

Reads the run's ``config.yaml`` and ``data.json`` artifacts, refuses (exit 2) when the CSV's
SHA-256 is no longer the one logged, trains with the same config, and logs a new run tagged
``sweeper.rerun_of=RUN_ID``. With ``--check`` every final metric of the new run is compared with
the original's (``train_seconds`` excepted), and so are its end state and fail reason (a FAILED run
passes only when the rerun fails the same way); any difference exits 1. On the same machine a
float64 run reruns bit for bit.

Exit status: 0 done (and, with --check, every metric matches); 1 the rerun failed, or with
--check the run is not reproduced (a metric differs, or the data file changed so the rerun is
refused); 2 the run cannot be rerun (unknown run, missing artifact, changed data without
--check, bad config).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Mapping

from sweeper.errors import ArgumentParser, SweeperError
from sweeper.tracking import existing_store
from sweeper.tracking.tags import BEST_RUN_TAG, FAIL_REASON_TAG, RERUN_OF_TAG, STATE_TAG, STUDY_TAG

#: Metrics that legitimately change between identical runs.
UNCOMPARED = frozenset({"train_seconds"})


class RerunRefused(SweeperError):
    """The run cannot be re-executed as logged (exit status 2)."""


class DataChanged(RerunRefused):
    """The data file is not the one the run was trained on (with --check: exit status 1)."""


def differing_metrics(original: Mapping[str, float], new: Mapping[str, float], rtol: float = 0.0) -> list[str]:
    """Names of metrics (besides ``train_seconds``) missing from one side or not equal.

    Equal means identical (NaN equals NaN) when ``rtol`` is 0, else |a − b| <= rtol·max(|a|, |b|).
    """
    different = []
    for name in sorted((set(original) | set(new)) - UNCOMPARED):
        a, b = original.get(name), new.get(name)
        if a is None or b is None:
            different.append(name)
        elif math.isnan(a) and math.isnan(b):
            continue
        elif not (a == b or abs(a - b) <= rtol * max(abs(a), abs(b))):
            different.append(name)
    return different


def differing_end(original_tags: Mapping[str, str], result: Mapping) -> str | None:
    """How the rerun's end (state, and fail reason) differs from the original's, or None.

    A PRUNED original is compared as COMPLETE: a rerun has no sweep to prune it.
    """
    state = original_tags.get(STATE_TAG)
    if state is None:
        return None
    expected = "COMPLETE" if state == "PRUNED" else state
    if result["state"] != expected:
        return f"state {state} -> {result['state']}"
    reason = original_tags.get(FAIL_REASON_TAG)
    if expected == "FAIL" and reason != result["reason"]:
        return f"fail reason {reason!r} -> {result['reason']!r}"
    return None


def load_logged_run(client, run_id: str, folder: Path):
    """``(run, cfg, data_info)`` of a logged run; RerunRefused when it cannot be rerun."""
    from mlflow.exceptions import MlflowException
    from omegaconf import OmegaConf

    from sweeper.config import Config

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RerunRefused(f"run {run_id!r} not found in {client.tracking_uri}") from None
    paths = {}
    for name in ("config.yaml", "data.json"):
        try:
            paths[name] = Path(client.download_artifacts(run_id, name, str(folder)))
        except (MlflowException, OSError):
            best = run.data.tags.get(BEST_RUN_TAG)
            if STUDY_TAG in run.data.tags:  # a sweep's parent run: its trials are the runs
                then = f"rerun its best trial: python -m sweeper.rerun {best}" if best else "rerun one of its trials' runs"
                raise RerunRefused(f"run {run_id} is the parent run of sweep '{run.data.tags[STUDY_TAG]}'; {then}") from None
            raise RerunRefused(f"run {run_id} has no {name} artifact; it was not logged by sweeper") from None
    cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(paths["config.yaml"]))
    data_info = json.loads(paths["data.json"].read_text())
    return run, cfg, data_info


def rerun(run_id: str, uri: str | None, check: bool = False, rtol: float = 0.0) -> int:
    """Rerun ``run_id`` from the store at ``uri`` (None: the default store); return the exit
    status (see module doc). A store that does not exist is refused, never created."""
    from sweeper.app import FAIL, format_result, run
    from sweeper.data import sha256_file

    client, uri = existing_store(uri)
    with tempfile.TemporaryDirectory(prefix="sweeper-rerun-") as folder:
        original, cfg, data_info = load_logged_run(client, run_id, Path(folder))
    path = str(cfg.data.path)  # refused unless the file still has the SHA-256 logged in data.json
    if not Path(path).is_file():
        raise RerunRefused(f"data file {path} of run {run_id} no longer exists")
    logged, now = data_info.get("sha256"), sha256_file(path)
    if logged != now:
        raise DataChanged(f"data file {path} has changed since run {run_id} "
                          f"(sha256 {now[:12]}… now, {str(logged)[:12]}… logged); refusing to rerun")
    cfg.mlflow.tracking_uri = uri  # log the rerun next to the original

    result = run(cfg, run_name=f"rerun-of-{run_id[:8]}", tags={RERUN_OF_TAG: run_id}, terminal=True)
    print(format_result(result, cfg))
    if not check:
        return 1 if result["state"] == FAIL else 0

    old, new = original.data.metrics, client.get_run(result["run_id"]).data.metrics
    if ending := differing_end(original.data.tags, result):
        print(f"check FAILED: run {result['run_id']} ended differently from run {run_id}: {ending}", file=sys.stderr)
        return 1
    if different := differing_metrics(old, new, rtol):
        details = ", ".join(f"{name} ({old.get(name)!r} -> {new.get(name)!r})" for name in different)
        pruned = original.data.tags.get(STATE_TAG) == "PRUNED"
        note = " (the original was PRUNED by its sweep; a rerun trains to the end)" if pruned else ""
        print(f"check FAILED: run {result['run_id']} differs from run {run_id} in: {details}{note}",
              file=sys.stderr)
        return 1
    compared = len(set(old) - UNCOMPARED)
    ended = f", and its end ({result['state']}: {result['reason']})" if result["state"] == FAIL else ""
    print(f"check passed: all {compared} metrics of run {run_id} reproduced by run {result['run_id']}{ended}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m sweeper.rerun",
        description="Re-execute a logged run from its logged config.yaml and log it as a new run.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="MLflow run id of the run to repeat")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every final metric (train_seconds excepted) matches the original")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db "
                             "at the project root)")
    parser.add_argument("--rtol", type=float, default=0.0,
                        help="relative tolerance of --check (default 0: identical values)")
    args = parser.parse_args(argv)
    if not args.rtol >= 0:  # also NaN
        parser.error(f"argument --rtol: {args.rtol} is not a tolerance; allowed: a number >= 0")
    try:
        return rerun(args.run_id, args.tracking_uri, check=args.check, rtol=args.rtol)
    except RerunRefused as error:
        print(f"rerun: {error}", file=sys.stderr)
        return 1 if args.check and isinstance(error, DataChanged) else 2
    except SweeperError as error:
        print(f"rerun: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rerun: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
