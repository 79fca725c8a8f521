"""Reading a per-epoch curve back from MLflow as the product does (`sweeper.report.source.curves`)."""

from __future__ import annotations


def epoch_values(client, run_id: str, key: str) -> dict[int, float]:
    """``{epoch: value}`` of the curve ``key``: each step's first value. A run logs its final
    ``val_loss`` (and a classifier's ``val_accuracy``) once more at the last epoch, stamped
    later, which is the value MLflow's runs table shows."""
    values: dict[int, float] = {}
    for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
        values.setdefault(int(metric.step), float(metric.value))
    return values
