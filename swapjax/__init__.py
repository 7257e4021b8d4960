"""swapjax: small-data deep-learning studies (model pairs, seeds, conditions) as single compiled
JAX programs."""

__version__ = "0.1.0"
