"""The PyTorch reference: the sequential baseline's protocol as a plain eager PyTorch loop.

    python3 -m pip install -e '.[bench]'
    python3 -m benchmarks.run --preset=tiny \
        --strategies=patches/scan,lax/sequential,torch/sequential

What a PyTorch user writes: for every model of the round, one after another, one epoch of
shuffled batches (`model(x)`, `loss.backward()`, `optimizer.step()`), then the evaluation passes
over the pool (and the holdout set when the study tests every round) under `torch.no_grad()`.
The network is swapjax's layer spec (`torch_model`: the same parameters, Keras' initialisers), the
optimiser and the loss are the config's, and the work per model is `run._time_sequential`'s: the
same training steps at the same batch size on the same pool arrays, the same evaluation passes
in the same chunks. Not compiled; torch's default thread count, on the CPU (on the GPU when JAX
runs on one and torch sees CUDA, so that a ratio compares the same hardware).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.timing import tests_every_round, timed
from swapjax import study, train
from swapjax.config import run_table
from swapjax.models import config_layers, parse_layer

TORCH = "torch/sequential"
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


class Permute(nn.Module):
  """Reorders the axes (NHWC <-> NCHW around the convolutions)."""

  def __init__(self, *dims: int):
    super().__init__()
    self.dims = dims

  def forward(self, x):
    return x.permute(*self.dims)


class Mean(nn.Module):
  """The mean over `dims` (global average pooling)."""

  def __init__(self, dims: tuple[int, ...]):
    super().__init__()
    self.dims = dims

  def forward(self, x):
    return x.mean(self.dims)


class SimpleRNN(nn.Module):
  """Keras `SimpleRNN(..., return_sequences=True)` as swapjax.models.SimpleRNN: (B, T, F) ->
  (B, T, units), h_t = act((x_t * m_x) W + (h_{t-1} * m_h) U + b), one dropout mask per
  sequence; a Python loop over the time steps."""

  def __init__(self, features, units, activation="tanh", dropout=0.0, recurrent_dropout=0.0):
    super().__init__()
    self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(features, units)))
    self.recurrent_kernel = nn.Parameter(nn.init.orthogonal_(torch.empty(units, units)))
    self.bias = nn.Parameter(torch.zeros(units))
    self.act = ACTIVATIONS[activation]
    self.dropout, self.recurrent_dropout = dropout, recurrent_dropout

  def _mask(self, rate, shape, like):
    if not self.training or rate == 0.0:
      return None
    return torch.bernoulli(torch.full(shape, 1.0 - rate, device=like.device)) / (1.0 - rate)

  def forward(self, x_BxTxF):
    b, t, f = x_BxTxF.shape
    input_mask = self._mask(self.dropout, (b, 1, f), x_BxTxF)
    state_mask = self._mask(self.recurrent_dropout, (b, self.bias.shape[0]), x_BxTxF)
    if input_mask is not None:
      x_BxTxF = x_BxTxF * input_mask
    xw_BxTxU = x_BxTxF @ self.kernel + self.bias
    h_BxU = x_BxTxF.new_zeros(b, self.bias.shape[0])
    steps = []
    for i in range(t):
      h_in = h_BxU if state_mask is None else h_BxU * state_mask
      h_BxU = self.act(xw_BxTxU[:, i] + h_in @ self.recurrent_kernel)
      steps.append(h_BxU)
    return torch.stack(steps, 1)


def _keras_init(module: nn.Module) -> nn.Module:
  """Glorot-uniform weights and zero biases (Keras' and swapjax's defaults)."""
  nn.init.xavier_uniform_(module.weight)
  nn.init.zeros_(module.bias)
  return module


def torch_model(
  layers, input_shape, dropout_rate: float = 0.0, leaky_slope: float = 0.3
) -> nn.Sequential:
  """swapjax's layer spec (`config_layers(cfg)`) as a `torch.nn.Sequential` on inputs shaped like
  swapjax's (NHWC images, (T, F) sequences, vectors), with the same parameters and outputs.

  Convolutions and pooling run in NCHW; the tensor goes back to NHWC before a flatten, a dense
  layer or the output, so the flatten order (hence the dense weights) is swapjax's. `dropout`
  and `leaky_relu` without their own number take the run's `dropout_rate` and `leaky_slope`.
  """
  shape = list(input_shape)  # one sample's shape, in swapjax's (channels-last) order
  modules, channels_first = [], False

  def to_channels(first: bool):
    nonlocal channels_first
    if channels_first != first:
      modules.append(Permute(0, 3, 1, 2) if first else Permute(0, 2, 3, 1))
      channels_first = first

  for text in layers:
    kind, args = parse_layer(text)
    if kind in ("conv", "maxpool"):
      if len(shape) != 3:
        raise ValueError(f"layer '{text}' takes (H, W, C) inputs, not {tuple(shape)}")
      to_channels(True)
    elif kind in ("flatten", "dense", "rnn"):
      to_channels(False)
    if kind == "conv":
      same = len(args) > 1 and args[1] == "same"
      features = int(args[0])
      modules.append(_keras_init(nn.Conv2d(shape[2], features, 3, padding=1 if same else 0)))
      shape = [shape[0] - 2 * (not same), shape[1] - 2 * (not same), features]
    elif kind == "maxpool":
      modules.append(nn.MaxPool2d(2))
      shape = [shape[0] // 2, shape[1] // 2, shape[2]]
    elif kind == "dropout":
      modules.append(nn.Dropout(float(args[0]) if args else dropout_rate))
    elif kind == "flatten":
      modules.append(nn.Flatten())
      shape = [math.prod(shape)]
    elif kind == "gap":
      modules.append(Mean((2, 3) if channels_first else (1, 2)))
      shape, channels_first = [shape[-1]], False  # (B, C): no layout left
    elif kind == "dense":
      modules.append(_keras_init(nn.Linear(shape[-1], int(args[0]))))
      shape = [*shape[:-1], int(args[0])]
    elif kind == "rnn":
      activation = args[1] if len(args) > 1 else "tanh"
      rates = [float(a) for a in args[2:4]] + [0.0, 0.0]
      modules.append(SimpleRNN(shape[-1], int(args[0]), activation, rates[0], rates[1]))
      shape = [*shape[:-1], int(args[0])]
    elif kind == "leaky_relu":
      modules.append(nn.LeakyReLU(float(args[0]) if args else leaky_slope))
    else:
      modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kind]())
  to_channels(False)
  return nn.Sequential(*modules)


def _keras_clip(probs):
  epsilon = torch.tensor(1e-7, dtype=probs.dtype)
  return probs.clamp(epsilon, 1 - epsilon)


def per_sample(task: str, loss: str, outputs, targets):
  """`train.per_sample` in torch: per-sample (loss, correct) of a batch of outputs."""
  axes = tuple(range(1, targets.ndim))
  mean = lambda a: a.mean(axes) if axes else a  # torch's mean over () would reduce everything
  if task == "softmax":
    if loss == "cross_entropy":
      loss_ = F.cross_entropy(outputs, targets, reduction="none")
    elif loss == "keras_cross_entropy":
      probs = outputs.softmax(-1).gather(-1, targets[..., None])[..., 0]
      loss_ = -_keras_clip(probs).log()
    else:
      loss_ = ((outputs.softmax(-1) - F.one_hot(targets, outputs.shape[-1])) ** 2).mean(-1)
    return loss_, (outputs.argmax(-1) == targets).float()
  if task == "sigmoid":
    probs = torch.sigmoid(outputs)
    if loss == "cross_entropy":
      loss_ = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none")
    elif loss == "keras_cross_entropy":
      clipped = _keras_clip(probs)
      loss_ = -(targets * clipped.log() + (1 - targets) * (1 - clipped).log())
    else:
      loss_ = (probs - targets) ** 2
    return mean(loss_), mean(((probs > 0.5) == (targets > 0.5)).float())
  loss_ = mean((outputs - targets) ** 2)
  return loss_, torch.full_like(loss_, float("nan"))


def make_optimizer(cfg, params, learning_rate: float) -> torch.optim.Optimizer:
  """`train.make_optimizer` in torch: Keras Adam (beta 0.9/0.999, the config's eps) or SGD with
  heavy-ball momentum (torch's `v = m v + g; w -= lr v` is optax.trace's, at a constant rate)."""
  if cfg.optimizer == "sgd":
    return torch.optim.SGD(params, lr=learning_rate, momentum=cfg.momentum)
  return torch.optim.Adam(params, lr=learning_rate, betas=(0.9, 0.999), eps=cfg.adam_eps)


def normalize(x, mode: str):
  """`train.normalize`: uint8 to float (/255, `centered`: -0.5); float inputs unchanged."""
  if x.dtype != torch.uint8:
    return x.float()
  x = x.float() / 255.0
  return x - 0.5 if mode == "centered" else x


def augment(x_BxHxWxC, flip: float, rotation: float):
  """Random flips and rotations of the batch as a PyTorch user writes them (`grid_sample`,
  bilinear, reflected edges): the work of swapjax.augment, not its exact pixels."""
  b, h, w, c = x_BxHxWxC.shape
  if flip:
    mirror = torch.rand(b, device=x_BxHxWxC.device) < 0.5
    x_BxHxWxC = torch.where(mirror[:, None, None, None], x_BxHxWxC.flip(2), x_BxHxWxC)
  if rotation:
    angle = (torch.rand(b, device=x_BxHxWxC.device) * 2 - 1) * rotation * 2 * math.pi
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=True)
    x = F.grid_sample(
      x_BxHxWxC.permute(0, 3, 1, 2), grid, padding_mode="reflection", align_corners=True
    )
    x_BxHxWxC = x.permute(0, 2, 3, 1)
  return x_BxHxWxC


@dataclasses.dataclass
class Protocol:
  """What one model does in a round, read from the config (as train.make_train_epoch does)."""

  cfg: object
  run: dict
  images: torch.Tensor  # (P, ...) uint8 images or float inputs, the pool
  labels: torch.Tensor  # (P, ...)
  holdout: tuple | None  # (images (T, ...), labels (T, ...)) when the study tests every round
  train_ids: torch.Tensor  # (N,) the member's pool ids, the first num_train of which train
  eval_chunk: int
  counts: dict = dataclasses.field(default_factory=lambda: {"steps": 0, "eval_images": 0})

  def train_epoch(self, model, optimizer):
    """One epoch: shuffled batches of `min(batch_size, num_train)`, the last one partial; with
    `micro_batches`, each batch in slices with accumulated gradients. Returns the mean loss over
    the steps and the running accuracy (`train.make_train_epoch`'s outputs)."""
    cfg, n_train = self.cfg, self.cfg.num_train
    batch = min(cfg.batch_size, n_train)
    slice_size = batch // (cfg.micro_batches or 1)
    task, loss_kind = cfg.task, train.task_loss(cfg)
    flip, rotation = self.run["augment_flip"], self.run["augment_rotation"]
    order = self.train_ids[torch.randperm(n_train, device=self.train_ids.device)]
    model.train()
    losses, hits = [], 0.0
    for start in range(0, n_train, batch):
      ids = order[start : start + batch]
      x, y = normalize(self.images[ids], cfg.normalize), self.labels[ids]
      if flip or rotation:
        x = augment(x, flip, rotation)
      optimizer.zero_grad(set_to_none=True)
      total = 0.0
      for x_slice, y_slice in zip(x.split(slice_size), y.split(slice_size), strict=True):
        loss_B, correct_B = per_sample(task, loss_kind, model(x_slice), y_slice)
        loss = loss_B.sum() / len(ids)  # the whole batch's mean, as masked_mean_loss
        loss.backward()
        total += loss.detach()
        hits += correct_B.sum().detach()
      optimizer.step()
      losses.append(total)
      self.counts["steps"] += 1
    return torch.stack(losses).mean(), hits / n_train

  @torch.no_grad()
  def evaluate(self, model, images, labels):
    """Per-sample (loss, correct) of every sample, in chunks (`train.make_evaluate`)."""
    model.eval()
    task, loss_kind = self.cfg.task, train.task_loss(self.cfg)
    out = [
      per_sample(task, loss_kind, model(normalize(x, self.cfg.normalize)), y)
      for x, y in zip(images.split(self.eval_chunk), labels.split(self.eval_chunk), strict=True)
    ]
    self.counts["eval_images"] += len(images)
    return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])

  def model_round(self, model, optimizer):
    """A model's share of a round: train one epoch, evaluate the pool (and the holdout)."""
    out = [*self.train_epoch(model, optimizer), *self.evaluate(model, self.images, self.labels)]
    if self.holdout is not None:
      out += self.evaluate(model, *self.holdout)
    return out


def default_device() -> str:
  """Where the reference runs: the GPU when JAX runs on one and torch sees CUDA, else the CPU."""
  return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _tensor(array, dtype=None, device="cpu"):
  t = torch.from_numpy(np.array(array))
  return (t if dtype is None else t.to(dtype)).to(device)


def build_protocol(cfg, ds, device: str = "cpu") -> Protocol:
  """The pool, holdout and run numbers `_time_sequential` trains every model on."""
  one = cfg.replace(num_seeds=1, conditions=cfg.conditions[:1], warmup=(0,))
  run = run_table(one)[0]
  pool = study.build_pool(one, ds, [run])
  label_dtype = torch.long if cfg.task == "softmax" else torch.float32
  holdout = None
  if tests_every_round(cfg):
    holdout = (
      _tensor(pool.holdout_images_VxTxHxWxC[0], device=device),
      _tensor(pool.holdout_labels_T, label_dtype, device),
    )
  chunk = cfg.eval_batch_size or (500 if jax.default_backend() == "cpu" else 1000)
  return Protocol(
    cfg,
    run,
    _tensor(pool.images_VxPxHxWxC[0], device=device),
    _tensor(pool.labels_RxP[0], label_dtype, device),
    holdout,
    torch.arange(cfg.half_size, device=device),
    chunk,
  )


def time_torch(cfg, ds, repeats: int, summarise=None, device: str | None = None) -> dict:
  """Times rounds of every model of `cfg`, one after another in eager PyTorch, a warm-up round
  excluded; returns the benchmark's row (`summarise`: run._summarise, passed in by run.main so
  that `python -m benchmarks.run` does not import itself a second time)."""
  if summarise is None:
    from benchmarks.run import _summarise as summarise
  device = device or default_device()
  protocol = build_protocol(cfg, ds, device)
  layers = config_layers(cfg)
  models = len(run_table(cfg)) * cfg.members
  run = protocol.run
  torch.manual_seed(cfg.seed)
  nets = [
    torch_model(layers, ds.image_shape, run["dropout_rate"], run["leaky_slope"]).to(device)
    for _ in range(models)
  ]
  optimizers = [make_optimizer(cfg, net.parameters(), run["learning_rate"]) for net in nets]
  sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None

  def one_round():
    for net, optimizer in zip(nets, optimizers, strict=True):
      protocol.model_round(net, optimizer)
      sync()  # every model's work done before the next, as block_until_ready in the JAX loop

  first, times = timed(one_round, repeats)  # the warm-up: allocator, first-call dispatch
  result = {
    "strategy": TORCH,
    "conv_impl": "torch",
    "driver": "sequential",
    "runs": len(run_table(cfg)),
    "models": models,
    "first_round_s": first,
    "torch": torch.__version__,
    "torch_device": device,
    "torch_threads": torch.get_num_threads(),
  }
  # The work actually done, per model and round (tests compare it with the JAX baseline's).
  rounds = models * (repeats + 1)  # the warm-up round did the same work
  result["train_steps_per_model"] = protocol.counts["steps"] / rounds
  result["eval_images_per_model"] = protocol.counts["eval_images"] / rounds
  return summarise(result, cfg, ds, times)
