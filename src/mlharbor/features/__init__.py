"""The feature store: feature tables, lookups, on-demand functions, point-in-time training sets,
feature specs and online stores."""

from mlharbor.features.definitions import FeatureFunction, FeatureLookup

__all__ = ["FeatureFunction", "FeatureLookup"]
