"""Whether a study's network fits its data, from shapes alone (pure Python and NumPy, no JAX).

The layer spec (swapjax.layers) is walked over one sample's input shape with the semantics of
swapjax.models.SpecNet, and the network's output is held against the task's targets (as
swapjax.train.per_sample reads them). A network that cannot run on its data, or whose outputs
do not match its targets, fails before anything is compiled or written: one line naming the
layer and what the data gives.
"""

from __future__ import annotations

import math

import numpy as np

from swapjax.config import IMAGE_DATASETS, Config, ConfigError
from swapjax.layers import ACTIVATION_NAMES, config_layers, parse_layer

# The image sets' classes (swapjax.data.NUM_CLASSES, the same number: tested); listed here so
# that the check stays free of the loaders.
IMAGE_CLASSES = 10
# What one sample of each rank is: images (H, W, C), features (F,), sequences (T, F).
SAMPLE_KINDS = {1: "features", 2: "sequences", 3: "images"}
IMAGES = "images (height, width, channels)"
SHAPE_KEEPING = ("dropout", "leaky_relu", *ACTIVATION_NAMES)  # never the output layer


def describe(shape) -> str:
  """One sample's kind and shape: `images (28, 28, 1)`, `features (4,)`, `sequences (8, 2)`."""
  return f"{SAMPLE_KINDS.get(len(shape), 'arrays')} {tuple(shape)}"


def num_classes(dataset: str, labels: np.ndarray) -> int | None:
  """The classes of a data set's integer labels: the image sets' 10 (a subset need not show
  them all), else the largest label + 1; None for float targets."""
  if not np.issubdtype(labels.dtype, np.integer):
    return None
  if dataset in IMAGE_DATASETS:
    return IMAGE_CLASSES
  return int(labels.max()) + 1 if labels.size else 0


def layer_output(kind: str, args: tuple[str, ...], shape: tuple[int, ...]):
  """One sample's shape after a layer, or a phrase saying what the layer needs when `shape`
  does not fit it (conv: 3x3 stride 1, `valid` by default; maxpool: 2x2 windows, stride 2)."""
  if kind in ("conv", "maxpool") and len(shape) != 3:
    return IMAGES
  if kind == "conv":
    same = args[1:] == ("same",)
    if not same and min(shape[:2]) < 3:
      return f"images of at least 3x3 (valid padding; conv:{args[0]}:same keeps the size)"
    height, width = shape[:2] if same else (shape[0] - 2, shape[1] - 2)
    return (height, width, int(args[0]))
  if kind == "maxpool":
    if min(shape[:2]) < 2:
      return "images of at least 2x2"
    return (shape[0] // 2, shape[1] // 2, shape[2])
  if kind == "gap":
    return (shape[2],) if len(shape) == 3 else IMAGES
  if kind == "rnn":
    return (shape[0], int(args[0])) if len(shape) == 2 else "sequences (time, features)"
  if kind == "flatten":
    return (math.prod(shape),)
  if kind == "dense":  # on the last axis: per time step after a recurrent layer
    return (*shape[:-1], int(args[0])) if shape else "inputs with a feature axis"
  return shape  # dropout and the activations keep the shape


def check_network(
  config: Config, input_shape, target_shape, classes: int | None
) -> tuple[int, ...]:
  """Raises ConfigError (one line) when `config`'s network does not run on one sample of
  `input_shape` or its outputs do not fit targets of `target_shape` (one sample's; () for a
  class label) with `classes` classes (None: float targets) under `config.model.task`; else
  returns one sample's output shape."""
  where = f"variant {config.variant}: " if config.variant else ""
  shape, source = tuple(input_shape), config.data.dataset
  last = ""  # the last layer that sets the outputs
  for i, text in enumerate(config_layers(config), start=1):
    try:
      kind, args = parse_layer(text)
    except ValueError as e:
      raise ConfigError(f"{where}layers: {e}") from None
    out = layer_output(kind, args, shape)
    if isinstance(out, str):
      raise ConfigError(f"{where}layer {i} '{text}' needs {out}; {source} gives {describe(shape)}")
    if kind not in SHAPE_KEEPING:
      last = f"the output layer '{text}'"
    shape, source = out, f"layer {i} '{text}'"
  problem = output_problem(config, shape, last or "the network", tuple(target_shape), classes)
  if problem:
    raise ConfigError(where + problem)
  return shape


def output_problem(config: Config, shape, name: str, target_shape, classes: int | None):
  """Why outputs of one sample's `shape` (from the layer `name`) do not fit the task's targets,
  or None when they do (swapjax.train.per_sample)."""
  data, task = config.data.dataset, config.model.task
  if task == "softmax":
    if classes is None:
      return (
        f"task=softmax needs integer class labels; {data} gives float targets {target_shape} "
        "per sample (task=sigmoid or task=regression)"
      )
    want = (*target_shape, classes)
    if shape[:-1] != target_shape:
      per = "one label per sample" if not target_shape else f"labels {target_shape} per sample"
      return (
        f"{name} gives outputs {shape} per sample; {data}'s {per} need {want}: one score per "
        "class (task softmax)"
      )
    if shape[-1] != classes:
      return f"{name} gives {shape[-1]} outputs; {data} has {classes} classes (task softmax)"
    return None
  if classes is not None:
    return (
      f"task={task} needs float targets; {data} gives class labels ({classes} classes): use "
      "task=softmax"
    )
  if shape != target_shape:
    return (
      f"{name} gives outputs {shape} per sample; {data}'s targets are {target_shape} "
      f"(task {task}: one output per target)"
    )
  return None
