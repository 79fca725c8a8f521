"""Reading back what a sweep stored in its Optuna storage, as Optuna itself reads it."""

from __future__ import annotations

import optuna


def storage(url: str) -> optuna.storages.BaseStorage | str:
    """A fresh view of ``url``: a journal file's path (the default) or a database URL."""
    if "://" in url:
        return url
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def load_study(study_name: str, storage_url: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=storage(storage_url))


def study_names(storage_url: str) -> list[str]:
    return optuna.get_all_study_names(storage=storage(storage_url))
