"""``python -m sweeper.report [--experiment NAME] [--sweep RUN_ID] [--top K] [--out DIR] [--tracking-uri URI]``.

An unknown store, experiment or run is one line on stderr and exit status 2 (``HYDRA_FULL_ERROR=1``
shows the traceback, as for ``python -m sweeper``).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
from pathlib import Path

from sweeper.errors import ArgumentParser, SweeperError
from sweeper.report import build_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m sweeper.report",
        description="Overfitting and early-stopping analysis of a sweep: a table on stdout; trials.csv, PNG plots "
                    "and report.html in DIR, also logged to the sweep's parent run (artifacts under report/).",
    )
    parser.add_argument("--experiment", help="MLflow experiment (default: the default config's, e.g. car_prices)")
    parser.add_argument("--sweep", metavar="PARENT_RUN_ID",
                        help="the sweep's parent run id (default: the latest sweep); "
                             "a plain run id gives a one-row report")
    parser.add_argument("--top", metavar="K", type=int, default=5, help="trials in the table and the curve grid (default 5)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: reports/<sweep id>)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)")
    parser.add_argument("--no-log", action="store_true", help="do not upload the report to MLflow")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"argument --top: {args.top} is below 1; allowed: an integer >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.out:  # OSError naming the folder unless --out can be made or written, before the store is read
            out = Path(args.out).absolute()
            existing = next(p for p in [out, *out.parents] if p.exists())
            if not existing.is_dir():
                raise OSError(errno.ENOTDIR, "not a folder", str(existing))
            os.rmdir(tempfile.mkdtemp(prefix=".sweeper-probe-", dir=existing))  # a probe in its nearest existing parent
        report = build_report(args.sweep, args.tracking_uri, experiment=args.experiment, top=args.top,
                              out=args.out, log=not args.no_log)
    except (SweeperError, OSError) as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(error, OSError):  # e.g. --out in a folder that cannot be written
            where = error.filename or args.out
            error = f"--out {args.out}: cannot write {where}: {error.strerror}"
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.table)
    print()
    for sentence in report.findings:
        print(f"- {sentence}")
    print()
    print(f"report: {report.folder / 'report.html'}")
    if not args.no_log:
        print(f"logged to MLflow run {report.trials.info['sweep_id']} under report/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
