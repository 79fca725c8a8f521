"""The runtime: every process, fork, pipe, signal, garbage-collector and preload trick of the
package lives here, behind Hydra's Launcher contract.

- :mod:`sweeper.launcher.local`: ``hydra/launcher=local``, the default (jobs in this process
  with a drawing process, or in ``n_jobs`` worker processes);
- :mod:`sweeper.launcher.slurm`: what ``hydra/launcher=slurm`` adds to Hydra's submitit launcher;
- :mod:`sweeper.launcher.processes`: the processes themselves, and the command's start-up
  (the garbage collector while it starts).

What the sweeper may ask of a launcher beyond ``launch`` is in :mod:`sweeper.sweep.launching`.
"""
