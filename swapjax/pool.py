"""A study's data on the device: the data sets it loads, the pool of training images with each
run's labels and input variant, the holdout sets, and the per-run condition arrays.

Runs that share a seed share their corrupted inputs and labels, so conditions are compared on
paired runs.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from swapjax import data as datalib
from swapjax import prefixes
from swapjax.config import TRACED_AXES, Config, program_configs
from swapjax.layers import config_layers
from swapjax.state import Pool, RunArrays


def _input_variant(images: np.ndarray, kind: str, rng: np.random.Generator, stats):
  """Zhang et al.'s input corruptions, applied to a uint8 image set."""
  if kind == "none" or not len(images):
    return images
  flat = images.reshape(len(images), -1)
  if kind == "shuffled_pixels":
    return flat[:, stats["fixed_perm"]].reshape(images.shape)
  if kind == "random_pixels":
    return np.take_along_axis(
      flat, rng.permuted(np.tile(np.arange(flat.shape[1]), (len(flat), 1)), axis=1), axis=1
    ).reshape(images.shape)
  # gaussian: the data's mean and standard deviation, rounded and clipped to uint8.
  noise = rng.normal(stats["mean"], stats["std"], images.shape)
  return np.clip(np.rint(noise), 0, 255).astype(np.uint8)


def run_targets(
  config: Config, seed: int, corruption: float, pool_labels: np.ndarray, all_labels: np.ndarray
) -> np.ndarray:
  """The report's random labels (a permutation of all training labels, first P), given to a
  random `corruption` fraction of the pool; the rest keep their true labels."""
  rng = np.random.default_rng([config.runs.seed, seed, 1])
  random_labels = all_labels[rng.permutation(len(all_labels))][: len(pool_labels)]
  n_corrupt = int(round(corruption * len(pool_labels)))
  corrupt = rng.permutation(len(pool_labels))[:n_corrupt]
  labels = pool_labels.copy()
  labels[corrupt] = random_labels[corrupt]
  return labels


def _pool_sets(config: Config, ds: datalib.Dataset):
  """The pool, the test set and the second holdout set (empty if the data has none), each
  (images, labels), cut from the data set to the config's sizes."""
  p, t = config.train_pool, config.data.holdout_size
  if config.data.test_from_train:
    t = config.data.test_from_train
  if len(ds.train_images) < p:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.train_images)} training images, pool_size={p} asked for"
    )
  if len(ds.test_images) < t:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.test_images)} test images, holdout_size={t} asked for"
    )
  images, labels = ds.train_images[:p], ds.train_labels[:p]
  holdout, holdout_labels = ds.test_images[:t], ds.test_labels[:t]
  if ds.holdout_images is not None:
    extra = ds.holdout_images[: config.data.holdout_size]
    extra_labels = ds.holdout_labels[: config.data.holdout_size]
  else:
    extra = np.zeros((0, *images.shape[1:]), np.uint8)
    extra_labels = np.zeros(0, np.int32)
  return (images, labels), (holdout, holdout_labels), (extra, extra_labels)


def _input_variants(config: Config, table, images, holdout, extra):
  """The image sets' variants [(pool, test, extra)], the true images first and one more per
  (input corruption, seed) of the runs, and each run's variant index."""
  stats = {}  # of the pool's images, computed once if a run corrupts its inputs
  variants, variant_of = [(images, holdout, extra)], {}
  for run in table:
    key = (run["input_corruption"], run["seed"])
    if run["input_corruption"] != "none" and key not in variant_of:
      rng = np.random.default_rng([config.runs.seed, run["seed"], 2])
      stats = stats or {"mean": float(images.mean()), "std": float(images.std())}
      stats["fixed_perm"] = rng.permutation(images[0].size)
      variants.append(
        (
          _input_variant(images, key[0], rng, stats),
          _input_variant(holdout, key[0], rng, stats),
          _input_variant(extra, key[0], rng, stats),
        )
      )
      variant_of[key] = len(variants) - 1
  variant_R = [variant_of.get((r["input_corruption"], r["seed"]), 0) for r in table]
  return variants, variant_R


def _run_labels(config: Config, table, labels: np.ndarray, all_labels: np.ndarray):
  """Each run's pool labels (R, P, ...): label corruption, then regression target noise."""
  rows = []
  for run in table:
    row = run_targets(config, run["seed"], run["label_corruption"], labels, all_labels)
    if run["target_noise"]:  # regression targets with Gaussian noise, drawn per seed
      rng = np.random.default_rng([config.runs.seed, run["seed"], 3])
      row = row + (run["target_noise"] * rng.normal(size=row.shape)).astype(row.dtype)
    rows.append(row)
  return np.stack(rows)


def build_pool(config: Config, ds: datalib.Dataset, table) -> Pool:
  """The device pool of the runs in `table`: image variants, per-run labels and variant
  indices, the test set and the second holdout set."""
  (images, labels), (holdout, holdout_labels), (extra, extra_labels) = _pool_sets(config, ds)
  variants, variant_R = _input_variants(config, table, images, holdout, extra)
  return Pool(
    jnp.asarray(np.stack([v[0] for v in variants])),
    jnp.asarray(_run_labels(config, table, labels, ds.train_labels)),
    jnp.asarray(variant_R, jnp.int32),
    jnp.asarray(np.stack([v[1] for v in variants])),
    jnp.asarray(holdout_labels),
    jnp.asarray(np.stack([v[2] for v in variants])),
    jnp.asarray(extra_labels),
  )


def build_runs(config: Config, table) -> RunArrays:
  tables = config.schedules()
  # Every condition of the study, not only this table's: chunks of runs share one shape.
  width = max(
    len(tables[name]) for name in {*config.study.conditions, *(r["condition"] for r in table)}
  )
  thr = np.full((len(table), width), np.iinfo(np.int32).max, np.int32)
  ks = np.zeros((len(table), width), np.int32)
  for i, run in enumerate(table):
    for j, (t, k) in enumerate(tables[run["condition"]]):
      thr[i, j], ks[i, j] = t, k
  return RunArrays(
    jnp.asarray([r["seed"] for r in table], jnp.int32),
    jnp.asarray([r["warmup"] for r in table], jnp.int32),
    {axis: jnp.asarray([r[axis] for r in table], jnp.float32) for axis in TRACED_AXES},
    jnp.asarray(thr),
    jnp.asarray(ks),
  )


def eval_forests(config: Config, pool: Pool) -> dict:
  """{part: prefixes.Forest} of the evaluation sets whose distinct prefixes a causal sequence
  network evaluates once each (`eval_shared_prefixes`), where that halves the work or better."""
  if not (config.engine.eval_shared_prefixes and prefixes.causal(config_layers(config))):
    return {}
  forests = {}
  parts = {
    "pool": pool.images_VxPxHxWxC,
    "test": pool.holdout_images_VxTxHxWxC,
    "holdout": pool.extra_images_VxExHxWxC,
  }
  for part, sequences in parts.items():
    if sequences.ndim == 4 and sequences.shape[1]:  # (V, N, T, F)
      forest = prefixes.build(np.asarray(sequences))
      if prefixes.worth_it(forest):
        forests[part] = forest
  return forests


def load_data(config: Config, data_dir: str | None, tfds_data_dir: str | None):
  """The dataset; with `test_from_train`, its test set is the training images after the pool
  and its own test images become the holdout set."""
  ds = datalib.load(
    config.data.dataset,
    config.data.source,
    data_dir,
    tfds_data_dir,
    num_train=config.data_size,
    num_test=config.data.holdout_size,
    seed=config.runs.seed,
  )
  if not config.data.test_from_train:
    return ds
  t = config.data.test_from_train
  p = config.data.pool_size or len(ds.train_images) - t
  if len(ds.train_images) < p + t or p <= 0:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.train_images)} training images, pool_size={p} + "
      f"test_from_train={t} asked for"
    )
  return dataclasses.replace(
    ds,
    train_images=ds.train_images[:p],
    train_labels=ds.train_labels[:p],
    test_images=ds.train_images[p : p + t],
    test_labels=ds.train_labels[p : p + t],
    holdout_images=ds.test_images,
    holdout_labels=ds.test_labels,
  )


def load_datasets(config: Config, data_dir: str | None, tfds_data_dir: str | None):
  """{name: dataset} of every data set the study's variants train on (the config's first)."""
  names = dict.fromkeys([config.data.dataset] + [v.dataset for v in program_configs(config)])
  return {
    name: load_data(config.replace(dataset=name, variants=""), data_dir, tfds_data_dir)
    for name in names
  }


def resolve_sizes(config: Config, ds: datalib.Dataset) -> Config:
  """`pool_size=0`: every training image the data has (after a `test_from_train` split);
  `holdout_size=0`: every test image (every holdout image with `test_from_train`)."""
  held = ds.holdout_images if ds.holdout_images is not None else ds.test_images
  return config.replace(
    pool_size=config.data.pool_size or len(ds.train_images),
    holdout_size=config.data.holdout_size or len(held),
  )
