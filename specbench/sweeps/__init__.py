"""Searching the configuration space and measuring it.

``runner.run_sweep`` is the table of contents: ``options`` (what a sweep accepts, checked
once), ``setup`` (target, prompts, backends, manifest, run directory, study),
``baseline`` (the no-speculation reference, once per study), ``measure`` (one trial),
``results`` (results.json and trials.csv rebuilt from the study). ``space``, ``search``
and ``storage`` are the configuration space, the Optuna strategies and the study storage.
"""
