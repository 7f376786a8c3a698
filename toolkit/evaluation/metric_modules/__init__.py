"""Bundled ``evaluate`` modules, one folder each; load them with ``toolkit.evaluation.evaluate_metrics.load_metric``.

The ``__init__.py`` files only make setuptools ship the folders; ``evaluate.load`` reads the scripts by path.
"""
