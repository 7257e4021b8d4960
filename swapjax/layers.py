"""Layer specs as data: the layer values experiment files write, their compact text, parsing,
checking and the reports' named networks (pure Python).

A network is a tuple of layers. Experiment files write values (`Conv(32, padding="same")`,
`relu`, `maxpool`, `Dense(10)`, `RNN(16, "relu")`...); the config stores each as its compact
text (`conv:32:same`, `relu`, `maxpool`, `dense:10`, `rnn:16:relu`), which is also what `--set
layers=...` takes and what config.json holds. swapjax.models builds the network in Flax. The
config checks specs with this module before anything imports JAX.
"""

from __future__ import annotations

import dataclasses

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
PLAIN_KINDS = ("maxpool", "flatten", "gap", *ACTIVATION_NAMES)  # layers without arguments


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


# ---------------------------------------------------------------- layer values
def _number(x) -> str:
  """A rate or slope as the compact text writes it: `0` for zero, else the float's shortest
  exact form (`0.3`, `1e-05`), so that the text reads back as the same number."""
  return "0" if x == 0 else repr(float(x))


class _Layer:
  """Shared by the layer values: the compact text is `str(layer)`, checked when made."""

  def args(self) -> tuple:
    raise NotImplementedError

  def __str__(self) -> str:
    return ":".join((self.kind, *self.args()))

  def __post_init__(self):
    parse_layer(str(self))  # a ValueError (one line) for a value the network cannot take


@dataclasses.dataclass(frozen=True)
class Conv(_Layer):
  """A 3x3 convolution; `padding` None is Keras' default, valid, written `conv:F`."""

  filters: int
  padding: str | None = None
  kind = "conv"

  def args(self):
    return (str(self.filters), *([self.padding] if self.padding else []))


@dataclasses.dataclass(frozen=True)
class Dense(_Layer):
  """A dense layer (per time step after a recurrent layer): `dense:N`."""

  units: int
  kind = "dense"

  def args(self):
    return (str(self.units),)


@dataclasses.dataclass(frozen=True)
class RNN(_Layer):
  """Keras' SimpleRNN returning every step: `rnn:N[:ACTIVATION[:DROPOUT[:RECURRENT]]]`.
  `activation` None is Keras' tanh, written `rnn:N`; the rates are Keras' (one mask per
  sequence). With a rate, the activation is written out (its place comes first)."""

  units: int
  activation: str | None = None
  dropout: float = 0.0
  recurrent_dropout: float = 0.0
  kind = "rnn"

  def __post_init__(self):
    if self.activation is None and (self.dropout or self.recurrent_dropout):
      object.__setattr__(self, "activation", "tanh")
    super().__post_init__()

  def args(self):
    rates = (self.dropout, self.recurrent_dropout)
    rates = rates if rates[1] else rates[:1] if rates[0] else ()
    return (str(self.units), *([self.activation] if self.activation else []), *map(_number, rates))


@dataclasses.dataclass(frozen=True)
class Dropout(_Layer):
  """Dropout at a fixed `rate` (`dropout:RATE`), or at the run's `dropout_rate` (None:
  `dropout`)."""

  rate: float | None = None
  kind = "dropout"

  def args(self):
    return () if self.rate is None else (_number(self.rate),)


@dataclasses.dataclass(frozen=True)
class LeakyReLU(_Layer):
  """Leaky ReLU with a fixed `slope` (`leaky_relu:SLOPE`), or the run's `leaky_slope` (None:
  `leaky_relu`)."""

  slope: float | None = None
  kind = "leaky_relu"

  def args(self):
    return () if self.slope is None else (_number(self.slope),)


@dataclasses.dataclass(frozen=True)
class Plain(_Layer):
  """A layer without arguments, written as its kind: the constants below."""

  kind: str

  def __post_init__(self):
    if self.kind not in PLAIN_KINDS:
      raise ValueError(f"Plain('{self.kind}'): plain layers are {', '.join(PLAIN_KINDS)}")

  def args(self):
    return ()


relu = Plain("relu")
tanh = Plain("tanh")
sigmoid = Plain("sigmoid")
maxpool = Plain("maxpool")
flatten = Plain("flatten")
gap = Plain("gap")  # global average pooling
Layer = Conv | Dense | RNN | Dropout | LeakyReLU | Plain
_VALUES = {"conv": Conv, "dense": Dense, "rnn": RNN, "dropout": Dropout, "leaky_relu": LeakyReLU}


def layer_value(text: str) -> Layer:
  """The value of a compact layer text (`rnn:16:relu` -> `RNN(16, "relu")`); ValueError (one
  line) for text that is no layer. `str()` of the value gives the text back."""
  kind, args = parse_layer(text)
  if kind in PLAIN_KINDS:
    return Plain(kind)
  if kind == "rnn":
    units, *rest = args
    return RNN(int(units), *rest[:1], *map(float, rest[1:]))
  number = int if kind in ("conv", "dense") else float
  return _VALUES[kind](*([number(args[0])] if args else []), *args[1:])


def layer_text(layer: Layer | str) -> str:
  """The compact text of a layer value; text passes through as written."""
  return layer if isinstance(layer, str) else str(layer)


def layers_text(layers) -> tuple[str, ...]:
  """A network as the config stores it: each layer's compact text, in order. Takes layer
  values, texts, or one comma-separated text (as `--set layers=...`)."""
  if isinstance(layers, str):
    return tuple(p.strip() for p in layers.split(",") if p.strip())
  return tuple(layer_text(layer) for layer in layers)


def cnn_layers(blocks, block_dropout=0.0, dense=512, dense_dropout=0.0, classes=10):
  """The reports' CNN: per block conv(same)-relu-conv(valid)-relu-maxpool[-dropout], then
  flatten-dense-relu[-dropout]-dense. A dropout given as "run" takes the run's rate."""

  def drop(rate):
    return [Dropout()] if rate == "run" else [Dropout(rate)] if rate else []

  layers = []
  for features in blocks:
    layers += [Conv(features, "same"), relu, Conv(features, "valid"), relu, maxpool]
    layers += drop(block_dropout)
  layers += [flatten, Dense(dense), relu, *drop(dense_dropout), Dense(classes)]
  return layers_text(layers)


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


def network_layers(model) -> tuple[str, ...]:
  """A config's model section as layers: its `layers`, else its named model's (fixed dropout
  per `dropout`)."""
  if model.layers:
    return without_fixed_dropout(model.layers, model.dropout)
  return model_layers(model.name, model.dropout)


def config_layers(config) -> tuple[str, ...]:
  """A config's network (`network_layers` of its model section)."""
  return network_layers(config.model)


def chance_accuracy(config) -> float | None:
  """The accuracy of guessing, from the task: 1 / classes for softmax (the output layer's
  width), 0.5 per bit for sigmoid outputs, None for regression (no accuracy)."""
  if config.model.task == "regression":
    return None
  if config.model.task == "sigmoid":
    return 0.5
  last = parse_layer(config_layers(config)[-1])
  return 1.0 / int(last[1][0]) if last[0] == "dense" else None


def collapse_bounds(config) -> tuple[float, float] | None:
  """(from, to): a run collapsed when its training accuracy falls to `to` (1.5 x chance) after
  it was above `from` (0.5 and 3 x chance): report 003's collapse at 4,000 epochs, 10 classes
  (0.15 after 0.5). None where the task cannot tell a collapse from a poor fit: regression, and
  chance of 1/3 or more (iris' 3 classes, sigmoid bits), where 3 x chance is not reachable.
  The study's health check and the report's collapse section both follow it."""
  chance = chance_accuracy(config)
  if chance is None or 3 * chance >= 1.0:
    return None
  return max(0.5, 3 * chance), round(1.5 * chance, 12)
