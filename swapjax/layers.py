"""Layer specs as data: parsing, checking and the reports' named networks (pure Python).

A network is a tuple of layer strings (`conv:32:same`, `relu`, `maxpool`, `dense:10`,
`rnn:16:relu`...); swapjax.models builds it in Flax. The config checks specs with this module
before anything imports JAX.
"""

from __future__ import annotations

ACTIVATION_NAMES = ("relu", "tanh", "sigmoid")
LAYER_KINDS = (
  "conv",
  "maxpool",
  "dropout",
  "flatten",
  "gap",
  "dense",
  "rnn",
  "leaky_relu",
  *ACTIVATION_NAMES,
)


def parse_layer(text: str) -> tuple[str, tuple[str, ...]]:
  """`kind:arg:arg` -> (kind, args); raises ValueError (one line) for an unknown layer."""
  kind, *args = text.strip().split(":")
  if kind not in LAYER_KINDS:
    raise ValueError(f"unknown layer '{text}'; layers are {', '.join(LAYER_KINDS)}")
  if not _layer_args_ok(kind, args):
    raise ValueError(f"layer '{text}': expected {LAYER_FORMS[kind]}")
  return kind, tuple(args)


LAYER_FORMS = {
  "conv": "conv:FILTERS[:same|valid]",
  "dense": "dense:UNITS",
  "rnn": "rnn:UNITS[:relu|tanh|sigmoid[:DROPOUT[:RECURRENT_DROPOUT]]] (rates in [0, 1))",
  "dropout": "dropout or dropout:RATE with a rate in [0, 1)",
  "leaky_relu": "leaky_relu or leaky_relu:SLOPE",
}


def _layer_args_ok(kind: str, args: list[str]) -> bool:
  def number(text, kind=float, low=0.0, high=float("inf")):
    try:
      return low <= kind(text) < high
    except ValueError:
      return False

  if kind == "conv":
    return 1 <= len(args) <= 2 and number(args[0], int, 1) and args[1:] in ([], ["same"], ["valid"])
  if kind == "dense":
    return len(args) == 1 and number(args[0], int, 1)
  if kind == "rnn":
    return (
      1 <= len(args) <= 4
      and number(args[0], int, 1)
      and args[1:2] in ([], *([a] for a in ACTIVATION_NAMES))
      and all(number(a, float, 0.0, 1.0) for a in args[2:])
    )
  if kind == "dropout":
    return len(args) <= 1 and all(number(a, float, 0.0, 1.0) for a in args)
  if kind == "leaky_relu":
    return len(args) <= 1 and all(number(a) for a in args)
  return not args


def cnn_layers(blocks, block_dropout=0.0, dense=512, dense_dropout=0.0, classes=10):
  """The reports' CNN: per block conv(same)-relu-conv(valid)-relu-maxpool[-dropout], then
  flatten-dense-relu[-dropout]-dense. A dropout given as "run" takes the run's rate."""

  def drop(rate):
    return ["dropout"] if rate == "run" else [f"dropout:{rate}"] if rate else []

  layers = []
  for features in blocks:
    layers += [f"conv:{features}:same", "relu", f"conv:{features}:valid", "relu", "maxpool"]
    layers += drop(block_dropout)
  layers += ["flatten", f"dense:{dense}", "relu", *drop(dense_dropout), f"dense:{classes}"]
  return tuple(layers)


MODEL_SPECS = {
  # seeds/000: blocks (32, 32), dropout 0.25 after each block, Dense 512, dropout 0.5.
  "cifar_cnn": cnn_layers((32, 32), 0.25, 512, 0.5),
  # seeds/004: blocks (32, 64), no dropout, Dense 512.
  "cnn_004": cnn_layers((32, 64)),
  # seeds/003 (b): report 004's CNN with Dropout after the first Dense + relu at the run's
  # `dropout_rate` (rate 0 is (a)).
  "cnn_004_dropout": cnn_layers((32, 64), dense_dropout="run"),
}


def model_layers(name: str, dropout: bool = True) -> tuple[str, ...]:
  """The layer spec of a named model; `dropout=False` drops its fixed-rate dropout layers."""
  return without_fixed_dropout(MODEL_SPECS[name], dropout)


def without_fixed_dropout(layers, dropout: bool) -> tuple[str, ...]:
  return tuple(layers) if dropout else tuple(x for x in layers if not x.startswith("dropout:"))


def config_layers(config) -> tuple[str, ...]:
  """A config's network: its `layers`, else its named `model`'s (fixed dropout per `dropout`)."""
  if config.layers:
    return without_fixed_dropout(config.layers, config.dropout)
  return model_layers(config.model, config.dropout)


def chance_accuracy(config) -> float | None:
  """The accuracy of guessing, from the task: 1 / classes for softmax (the output layer's
  width), 0.5 per bit for sigmoid outputs, None for regression (no accuracy)."""
  if config.task == "regression":
    return None
  if config.task == "sigmoid":
    return 0.5
  last = parse_layer(config_layers(config)[-1])
  return 1.0 / int(last[1][0]) if last[0] == "dense" else None
