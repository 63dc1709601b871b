"""Reproducible studies on top of jnmf: ``jnmf-run configs/<study>.toml`` runs a study into a
resumable run folder, ``jnmf-figures RUN_DIR`` redraws its figures and tables.

A study (``experiments.study.Study``) owns its computation; ``experiments.registry`` names the
studies; the runner schedules, the store keeps run folders and provenance.  jnmf never
imports this package.
"""
