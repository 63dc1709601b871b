"""The studies: one module per study, each a ``Study`` class (``experiments.study``) named in
``experiments.registry``.  This package imports none of them; the registry imports a study's
module only when that study is used.
"""
