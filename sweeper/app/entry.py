"""``python -m sweeper``'s Hydra entry (``main``) and what it prints (``format_result``)."""

from __future__ import annotations

import sys
from typing import Any, Mapping

import hydra
from omegaconf import DictConfig

from sweeper import CONF_DIR as CONFIG_DIR
from sweeper.app import job
from sweeper.app.job import CURVE_METRICS, FAIL, SPLITS
from sweeper.errors import SweeperError, exit_for
from sweeper.overrides import check_bool_overrides


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig, drawing: Any = None) -> dict:
    """``python -m sweeper``: one run, or one job of a ``-m`` sweep.

    In a single run the final metrics are printed and a FAIL run (diverged, collapsed) exits 1; bad
    input raises, and ``sweeper.errors.exit_for`` turns it into one line with exit status 2. In a
    sweep, exceptions propagate to the sweeper, which records the trial as FAIL and goes on.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    single = not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.RUN
    try:
        if HydraConfig.initialized():
            check_bool_overrides(cfg, HydraConfig.get().overrides.task)
        result = job.run(cfg, drawing=drawing, terminal=single)
    except (SweeperError, KeyboardInterrupt) as error:
        if single:
            exit_for(error)
        raise
    if single:
        print(format_result(result, cfg))
        if result["state"] == FAIL:
            print(f"error: the run FAILED: {result['reason']}", file=sys.stderr)
            sys.exit(1)
    return result

def format_result(result: Mapping[str, Any], cfg: DictConfig) -> str:
    """The final metrics as a few aligned lines for the terminal."""
    metrics = result["metrics"]
    lines = [f"{result['state']}  MLflow run {result['run_id']}"]
    if "test_accuracy" in metrics:
        lines.append(f"{'':6}{'accuracy':>10}{'log_loss':>10}{'f1_macro':>10}{'roc_auc':>10}")
        for split in SPLITS:
            lines.append(f"{split:6}" + "".join(f"{metrics[f'{split}_{name}']:>10.4f}"
                                                for name in ("accuracy", "log_loss", "f1_macro", "roc_auc")))
    if "test_rmse" in metrics:
        lines.append(f"{'':6}{'rmse':>14}{'mae':>14}{'r2':>10}")
        for split in SPLITS:
            lines.append(
                f"{split:6}{metrics[f'{split}_rmse']:>14.6g}{metrics[f'{split}_mae']:>14.6g}"
                f"{metrics[f'{split}_r2']:>10.4f}"
            )
    lines.append("  ".join(f"{k}={metrics[k]:.6g}" for k in CURVE_METRICS if k in metrics and k != "val_loss"))
    objective = str(result.get("objective", cfg.objective))  # cfg's may say auto
    if objective in metrics:
        lines.append(f"objective {objective} = {metrics[objective]:.6g}")
    return "\n".join(lines)
