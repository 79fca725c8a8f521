"""Hydra discovers plugins in the ``hydra_plugins`` namespace; the logic lives in ``sweeper.sweep``."""
