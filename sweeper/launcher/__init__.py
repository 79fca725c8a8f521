"""The runtime: every process, fork, pipe, signal, garbage-collector and preload trick of the
package lives here, behind Hydra's Launcher contract: ``local`` (the default), ``slurm``, and the
``processes`` both run. What the sweeper may ask of a launcher beyond ``launch`` is in
:mod:`sweeper.sweep.launching`.
"""
