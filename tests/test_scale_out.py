"""Scale-out: many workers, one Optuna study in PostgreSQL, one MLflow server (issue 6).

Every server here is real and started by the fixtures in ``tests/servers.py`` on 127.0.0.1.
"""

from __future__ import annotations

import uuid

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.servers import mlflow_server, postgres, postgres_url  # noqa: F401  (fixtures)


def test_postgres_fixture_serves_a_database_optuna_can_share(postgres_url, postgres):
    conn = postgres.connect(postgres_url.rsplit("/", 1)[1])
    with conn, conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        assert int(cur.fetchone()[0]) >= 150000
    conn.close()

    study = optuna.create_study(study_name="fixture", storage=postgres_url, direction="minimize")
    study.optimize(lambda trial: (trial.suggest_float("x", -1, 1)) ** 2, n_trials=3)
    # A second client, as another worker would be, sees the same trials through the server.
    again = optuna.load_study(study_name="fixture", storage=postgres_url)
    assert [t.number for t in again.trials] == [0, 1, 2]
    assert again.best_value == study.best_value


def test_mlflow_server_fixture_keeps_runs_metrics_and_artifacts(mlflow_server, tmp_path):
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment_id = client.create_experiment(f"fixture-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    for epoch, loss in enumerate([0.9, 0.5, 0.3], start=1):
        client.log_metric(run.info.run_id, "val_loss", loss, step=epoch)
    note = tmp_path / "note.txt"
    note.write_text("served by the tracking server")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)

    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.9), (2, 0.5), (3, 0.3)]
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    # --artifacts-destination: the file went through the server to its artifacts directory.
    stored = list(mlflow_server.artifacts.rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "served by the tracking server"
    assert mlflow_server.backend_store_uri.startswith("postgresql+psycopg2://")
