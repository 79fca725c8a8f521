"""sweeper: Hydra + Optuna + MLflow hyperparameter sweeps over a feed-forward network in NumPy.

Kept import-free on purpose: ``python -m sweeper --help`` must stay fast, so heavy libraries
(MLflow, matplotlib, pandas) are imported only where they are used.

``CONF_DIR`` (the Hydra configs) and ``DATA_DIR`` (the bundled datasets) are a checkout's
``conf/`` and ``data/``, or an installed package's copies ``sweeper/conf`` and ``sweeper/datasets``.
``PROJECT_ROOT``, where relative store paths such as ``sqlite:///mlruns/mlflow.db`` resolve, is the
repository root in a checkout (``CHECKOUT``; None when installed), whatever directory a command runs
from, else the current directory, as MLflow's own ``mlruns/`` default does.
"""

from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY = _PACKAGE.parent

_IS_CHECKOUT = (_REPOSITORY / "pyproject.toml").is_file() and (_REPOSITORY / "conf" / "config.yaml").is_file()
CHECKOUT: Path | None = _REPOSITORY if _IS_CHECKOUT else None
CONF_DIR = CHECKOUT / "conf" if CHECKOUT else _PACKAGE / "conf"
DATA_DIR = CHECKOUT / "data" if CHECKOUT else _PACKAGE / "datasets"
PROJECT_ROOT = CHECKOUT or Path.cwd()
