"""Reproducible experiments on top of jnmf: TOML configs, a resumable runner, a results
store and figures.  ``jnmf-run CONFIG`` (or ``python -m experiments CONFIG``) runs a study;
``jnmf-figures RUN_DIR`` redraws its figures.  jnmf never imports this package.
"""
