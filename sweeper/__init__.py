"""sweeper: Hydra + Optuna + MLflow hyperparameter sweeps over a feed-forward network in NumPy.

Kept import-free on purpose: ``python -m sweeper --help`` must stay fast, so heavy libraries
(MLflow, matplotlib, pandas) are imported only where they are used.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root (the folder holding ``conf/``, ``data/`` and ``mlruns/``). Bundled dataset
#: paths and relative ``sqlite:///`` tracking URIs are anchored here, not at the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
