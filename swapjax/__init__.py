"""swapjax: small-data deep-learning studies (model pairs, seeds, conditions) as single compiled
JAX programs."""

__version__ = "0.1.0"

from swapjax.api import StudyResult, load, run  # noqa: E402  (the notebook API)

__all__ = ["StudyResult", "load", "run", "__version__"]
