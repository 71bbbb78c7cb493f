"""Tracking: MLflow runs with lineage, fast and safe model packaging, model cards.

Only :mod:`mlharbor.tracking.mlflow_adapter` imports MLflow.
"""
