"""Searching the configuration space and measuring it.

``runner.run_sweep`` is the table of contents: ``options`` (what a sweep accepts, checked
once), ``setup`` (target, prompts, backends, manifest, run directory, study),
``baseline`` (the no-speculation reference, once per study), ``measure`` (one trial),
``results`` (results.json and trials.csv rebuilt from the study); the steps after set-up
read the set-up sweep from ``context``. ``space``, ``strategy``, ``search`` and ``storage``
are the configuration space, the strategy objects, the proposals through one Optuna study
and the study storage.
"""
