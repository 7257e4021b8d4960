"""swapjax: small-data deep-learning studies (model pairs, seeds, conditions) as single compiled
JAX programs."""

import pathlib as _pathlib

from swapjax.version import __version__

# In a clone that was not installed, `swapjax.experiments` is the clone's top-level
# `experiments/` folder (setup.cfg maps it there when installed): the import system finds it
# through this package's __path__, so nothing is put into sys.modules by hand.
_clone_root = _pathlib.Path(__file__).resolve().parent.parent
if (_clone_root / "experiments" / "__init__.py").is_file() and not (
  _pathlib.Path(__file__).resolve().parent / "experiments"
).exists():
  __path__.append(str(_clone_root))  # noqa: F821 - a package's own __path__

from swapjax.api import StudyResult, load, run  # noqa: E402  (the notebook API)

__all__ = ["StudyResult", "load", "run", "__version__"]
