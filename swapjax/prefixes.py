"""Evaluation of recurrent networks once per distinct input prefix (`eval_shared_prefixes`).

A network of recurrent layers followed only by per-time-step layers (dense, activations,
dropout) is causal: its output at step t depends on the inputs up to t alone. Evaluation sets of
short sequences over a small alphabet share most of their prefixes: report 002's 10,000 training
pairs of 8-bit additions hold 4 distinct first steps, 16 distinct two-step prefixes, ..., at
most 16,384 distinct eight-step ones, about 20,000 distinct prefixes over all steps instead of
80,000 sample-steps. `Forest` lists them (computed once on the host from the data); the network
runs on its rows (`SimpleRNN` with `forest`: each row's state from its parent row's) and every
sample's outputs are gathered from the rows of its prefixes. The same arithmetic per prefix as
the per-sample evaluation; the products are batched differently, so float rounding may differ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from swapjax.layers import parse_layer

# Layers whose output at step t depends only on their input at steps <= t (at evaluation).
CAUSAL_LAYERS = ("rnn", "dense", "dropout", "relu", "tanh", "sigmoid", "leaky_relu")


class Forest(NamedTuple):
  """The distinct prefixes of sequences (V, N, T, F), one row each, step by step.

  Step t's rows are `offsets[t]:offsets[t + 1]` of the flat (S,) arrays."""

  offsets: tuple[int, ...]  # static, T + 1 numbers
  # int32: the row of the prefix one step shorter, relative to its step (0 at t = 0)
  parent_S: np.ndarray
  source_S: np.ndarray  # int32: a flat sample v * N + n whose prefix the row is
  row_VxNxT: np.ndarray  # int32: the row of each sample's prefix ending at each step

  @property
  def rows(self) -> int:
    return self.offsets[-1]

  @property
  def step_S(self) -> np.ndarray:
    """int32: each row's step t (its last input is its source sample's step t)."""
    return np.repeat(np.arange(len(self.offsets) - 1, dtype=np.int32), np.diff(self.offsets))

  def parents(self, t: int) -> np.ndarray:
    """Step t's parents as indices into step t - 1's rows."""
    return self.parent_S[self.offsets[t] : self.offsets[t + 1]]


def causal(layers) -> bool:
  """A sequence network whose per-step outputs depend only on the prefix: at least one
  recurrent layer, and only causal layers (no flatten, pooling or convolution)."""
  kinds = [parse_layer(layer)[0] for layer in layers]
  return "rnn" in kinds and all(kind in CAUSAL_LAYERS for kind in kinds)


def build(sequences_VxNxTxF: np.ndarray) -> Forest:
  """The forest of the distinct prefixes of every sequence of every variant (bitwise equal
  inputs are one prefix)."""
  v, n, t = sequences_VxNxTxF.shape[:3]
  flat = np.ascontiguousarray(sequences_VxNxTxF.reshape(v * n, t, -1))
  row_NxT = np.empty((v * n, t), np.int32)
  offsets, parents, sources = [0], [], []
  prefix = np.zeros(v * n, np.int64)  # each sample's prefix id at the previous step
  for s in range(t):
    step = np.ascontiguousarray(flat[:, s])
    token = np.unique(step.view(np.dtype((np.void, step.strides[0]))), return_inverse=True)[1]
    key = prefix * (int(token.max()) + 1) + token.reshape(-1)
    _, first, prefix = np.unique(key, return_index=True, return_inverse=True)
    prefix = prefix.reshape(-1)
    row_NxT[:, s] = offsets[-1] + prefix
    parents.append(row_NxT[first, s - 1] - offsets[-2] if s else np.zeros(len(first), np.int64))
    sources.append(first)
    offsets.append(offsets[-1] + len(first))
  cat = lambda parts: np.concatenate(parts).astype(np.int32)
  return Forest(tuple(offsets), cat(parents), cat(sources), row_NxT.reshape(v, n, t))


def worth_it(forest: Forest, max_fraction: float = 0.5) -> bool:
  """Whether the forest's rows (each run evaluates them all) are few enough, against a run's
  per-sample evaluation (N x T steps), to be worth the gathers."""
  _, n, t = forest.row_VxNxT.shape
  return forest.rows <= max_fraction * n * t
