"""Reading a per-epoch curve back from MLflow as the product does (`sweeper.report.source.curves`)."""

from __future__ import annotations


def epoch_values(client, run_id: str, key: str) -> dict[int, float]:
    """``{epoch: value}`` of the curve ``key``: each step's first value (a run logs one per epoch)."""
    values: dict[int, float] = {}
    for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
        values.setdefault(int(metric.step), float(metric.value))
    return values
