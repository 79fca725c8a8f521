"""sweeper: Hydra + Optuna + MLflow hyperparameter sweeps over a feed-forward network in NumPy.

Kept import-free on purpose: ``python -m sweeper --help`` must stay fast, so heavy libraries
(MLflow, matplotlib, pandas) are imported only where they are used.

Where things are, in a source checkout and in an installed wheel alike:

- ``CONF_DIR``: the Hydra configs (the repository's ``conf/``; an installed package carries a
  copy as ``sweeper/conf``);
- ``DATA_DIR``: the bundled datasets (``data/``; installed: ``sweeper/datasets``);
- ``PROJECT_ROOT``: where relative store paths such as ``sqlite:///mlruns/mlflow.db`` resolve:
  the repository root in a checkout (whatever directory a command runs from), else the current
  directory, as MLflow's own ``mlruns/`` default does;
- ``CHECKOUT``: the repository root, or None when running from an installed package.
"""

from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY = _PACKAGE.parent

CHECKOUT: Path | None = (
    _REPOSITORY
    if (_REPOSITORY / "pyproject.toml").is_file() and (_REPOSITORY / "conf" / "config.yaml").is_file()
    else None
)
CONF_DIR = CHECKOUT / "conf" if CHECKOUT else _PACKAGE / "conf"
DATA_DIR = CHECKOUT / "data" if CHECKOUT else _PACKAGE / "datasets"
PROJECT_ROOT = CHECKOUT or Path.cwd()
