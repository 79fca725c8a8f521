"""The Optuna sweeper: Hydra Sweeper plugin logic (exposed by ``hydra_plugins.sweeper_optuna``)
and the trial link a job uses to report to its Optuna trial."""
