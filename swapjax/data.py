"""Datasets as uint8 NumPy arrays, from the first source that has them.

Sources, in order for `source=auto`: `--data_dir` with the original files (MNIST/Fashion-MNIST
IDX `.gz`, CIFAR-10 `.npz` subsets, python or binary batches), a prepared tensorflow-datasets
directory (`tfds.data_source`, no TensorFlow needed), a tensorflow-datasets download when
TensorFlow and the network are there, then the MNIST subset shipped in the package. Offline with
none of these, loading fails within seconds with a message that says how to provide the data.
`synthetic` gives random data with the same shapes, for benchmarks and tests.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import socket
from pathlib import Path

import numpy as np
from absl import logging

from swapjax.dataset import DataError, Dataset  # noqa: F401 - part of this module's API

SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_CLASSES = 10
IDX_FILES = {
  "train_images": "train-images-idx3-ubyte.gz",
  "train_labels": "train-labels-idx1-ubyte.gz",
  "test_images": "t10k-images-idx3-ubyte.gz",
  "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# Published SHA-256 (tensorflow-datasets URL checksums) and the shared subsets' own.
SHA256 = {
  "mnist/train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
  "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
  "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
  "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
  "fashion_mnist/train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
  "fashion_mnist/train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
  "fashion_mnist/t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
  "fashion_mnist/t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
  "cifar10/train_subset.npz": "5ad01d00954e883cab6c172a70bf8b69f762421d0785df0a08f08bc0500dc8fc",
  "cifar10/test_subset.npz": "02b165309f344a567a0597530205419f80b247e24b20a914d52055c37af23c92",
}
# Published MD5 of the CIFAR-10 python batches (torchvision).
CIFAR_PY_MD5 = {
  "data_batch_1": "c99cafc152244af753f735de768cd75f",
  "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
  "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
  "data_batch_4": "634d18415352ddfa80567beed471001a",
  "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
  "test_batch": "40351d587109b95175f43aff81a1287e",
}
BUNDLED = Path(__file__).parent / "assets" / "mnist_subset.npz"
BUNDLED_ARRAY_SHA256 = {
  "train_images": "91c2bc2aae0716a3449df39638a595cafa60789f13a087cf9446ed8935f28dc1",
  "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
  "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
  "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "cifar10": "cifar10"}


def how_to_provide(name: str) -> str:
  return (
    f"provide {name} with --data_dir=DIR holding the original files (for example "
    f"DIR/{name}/...; see BUILD.md, 'Data'), or a prepared tensorflow-datasets directory "
    "with --tfds_data_dir, or run once with network and tensorflow-datasets installed"
  )


# ------------------------------------------------------------------ checks
def _digest(path: Path, algorithm: str) -> str:
  h = hashlib.new(algorithm)
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def _verify(path: Path, rel: str) -> None:
  want = SHA256.get(rel)
  if want and _digest(path, "sha256") != want:
    raise DataError(
      f"{path}: checksum mismatch (sha256 differs from the published {want[:12]}...);"
      " the file is damaged or not the original"
    )


def _check_arrays(path, images, labels, shape):
  if images.ndim != 4 or tuple(images.shape[1:]) != shape:
    raise DataError(f"{path}: images have shape {images.shape}, expected (N, {shape})")
  if images.dtype != np.uint8:
    raise DataError(f"{path}: images have dtype {images.dtype}, expected uint8")
  if labels.shape != (images.shape[0],):
    raise DataError(f"{path}: {labels.shape[0]} labels for {images.shape[0]} images")
  if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise DataError(
      f"{path}: labels out of range 0-{NUM_CLASSES - 1} (found {labels.min()}..{labels.max()})"
    )


# ------------------------------------------------------------------ IDX files
def read_idx(path: Path) -> np.ndarray:
  """Reads a gzip'd IDX file (MNIST layout), validating magic, sizes and length."""
  try:
    with gzip.open(path, "rb") as f:
      raw = f.read()
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise DataError(
      f"{path}: not a readable gzip file ({e}); the file is truncated or damaged"
    ) from None
  if len(raw) < 8:
    raise DataError(f"{path}: too short for an IDX header")
  magic = int.from_bytes(raw[0:4], "big")
  ndim = {2049: 1, 2051: 3}.get(magic)
  if ndim is None:
    raise DataError(f"{path}: IDX magic {magic}, expected 2049 (labels) or 2051 (images)")
  dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
  offset = 4 + 4 * ndim
  if len(raw) != offset + int(np.prod(dims)):
    raise DataError(f"{path}: {len(raw) - offset} data bytes for shape {tuple(dims)}; truncated")
  return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def _load_idx_dir(root: Path, name: str) -> Dataset | None:
  folder = root / name if (root / name).is_dir() else root
  paths = {k: folder / v for k, v in IDX_FILES.items()}
  present = [p for p in paths.values() if p.exists()]
  if not present:
    return None
  missing = [str(p) for p in paths.values() if not p.exists()]
  if missing:
    raise DataError(f"missing {name} file(s): {', '.join(missing)}")
  arrays = {key: read_idx(path) for key, path in paths.items()}
  ds = Dataset(
    name,
    arrays["train_images"][..., None],
    arrays["train_labels"].astype(np.int32),
    arrays["test_images"][..., None],
    arrays["test_labels"].astype(np.int32),
    source=f"files:{folder}",
  )
  _check_arrays(paths["train_images"], ds.train_images, ds.train_labels, SHAPES[name])
  _check_arrays(paths["test_images"], ds.test_images, ds.test_labels, SHAPES[name])
  for path in paths.values():  # structure first (clearer errors), then the published checksums
    _verify(path, f"{name}/{path.name}")
  return ds


# ------------------------------------------------------------------ CIFAR-10
class _PlainDataUnpickler(pickle.Unpickler):
  """Loads plain data and NumPy arrays only; any other global is refused (pickles run code)."""

  ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
  }

  def find_class(self, module, name):
    if (module, name) in self.ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain data")


def _read_cifar_py(path: Path) -> tuple[np.ndarray, np.ndarray]:
  md5 = CIFAR_PY_MD5.get(path.name)
  if md5 and _digest(path, "md5") != md5:
    raise DataError(f"{path}: checksum mismatch (md5 differs from the published {md5})")
  try:
    with open(path, "rb") as f:
      batch = _PlainDataUnpickler(f, encoding="bytes").load()
    data = np.asarray(batch[b"data"], np.uint8)
    labels = np.asarray(batch[b"labels"], np.int32)
  except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
    raise DataError(f"{path}: not a CIFAR-10 python batch ({e})") from None
  if data.ndim != 2 or data.shape[1] != 3072:
    raise DataError(f"{path}: data has shape {data.shape}, expected (N, 3072)")
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
  raw = np.fromfile(path, np.uint8)
  if raw.size == 0 or raw.size % 3073:
    raise DataError(f"{path}: {raw.size} bytes is not a whole number of 3073-byte records")
  records = raw.reshape(-1, 3073)
  return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0].astype(np.int32)


def _load_cifar(root: Path) -> Dataset | None:
  folder = root / "cifar10" if (root / "cifar10").is_dir() else root
  npz = folder / "train_subset.npz", folder / "test_subset.npz"
  py = folder / "cifar-10-batches-py"
  binary = folder / "cifar-10-batches-bin"
  if all(p.exists() for p in npz):
    parts = []
    for p in npz:
      _verify(p, f"cifar10/{p.name}")
      try:
        with np.load(p, allow_pickle=False) as z:
          parts.append((np.asarray(z["images"]), np.asarray(z["labels"]).astype(np.int32)))
      except (OSError, ValueError, KeyError, EOFError) as e:
        raise DataError(f"{p}: not a readable images/labels .npz ({e})") from None
      _check_arrays(p, *parts[-1], SHAPES["cifar10"])
    return Dataset("cifar10", *parts[0], *parts[1], source=f"files:{folder}")
  for sub, reader, suffix in [(py, _read_cifar_py, ""), (binary, _read_cifar_bin, ".bin")]:
    if (sub / f"data_batch_1{suffix}").exists():
      train = [reader(p) for i in range(1, 6) if (p := sub / f"data_batch_{i}{suffix}").exists()]
      test_path = sub / f"test_batch{suffix}"
      if not test_path.exists():
        raise DataError(f"missing CIFAR-10 file: {test_path}")
      test = reader(test_path)
      ds = Dataset(
        "cifar10",
        np.concatenate([t[0] for t in train]),
        np.concatenate([t[1] for t in train]),
        *test,
        source=f"files:{sub}",
      )
      _check_arrays(sub, ds.train_images, ds.train_labels, SHAPES["cifar10"])
      _check_arrays(test_path, ds.test_images, ds.test_labels, SHAPES["cifar10"])
      return ds
  if any(p.exists() for p in npz):
    raise DataError(f"missing CIFAR-10 file: {next(str(p) for p in npz if not p.exists())}")
  return None


def load_files(data_dir: str, name: str) -> Dataset:
  root = Path(data_dir).expanduser()
  if not root.is_dir():
    raise DataError(f"--data_dir={data_dir}: no such directory")
  ds = _load_cifar(root) if name == "cifar10" else _load_idx_dir(root, name)
  if ds is not None and name == "cifar10" and len(ds.train_images) < 50_000:
    ds = dataclasses.replace(
      ds,
      source=f"{ds.source} (a subset: {len(ds.train_images):,} of CIFAR-10's 50,000 training "
      f"images, {len(ds.test_images):,} of its 10,000 test images)",
    )
  if ds is None:
    want = (
      "cifar10/train_subset.npz and test_subset.npz, or cifar-10-batches-py/ or "
      "cifar-10-batches-bin/"
      if name == "cifar10"
      else f"{name}/{IDX_FILES['train_images']} and the other three IDX files"
    )
    raise DataError(f"--data_dir={data_dir}: no {name} files found; expected {want}")
  return ds


# ------------------------------------------------------------------ tensorflow-datasets
def _tfds_dir(tfds_data_dir: str | None) -> Path:
  return Path(
    tfds_data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
  ).expanduser()


def _tfds_prepared(name: str, tfds_data_dir: str | None) -> bool:
  folder = _tfds_dir(tfds_data_dir) / TFDS_NAMES[name]
  return folder.is_dir() and any(folder.glob("*/dataset_info.json"))


def _tfds_arrays(source) -> tuple[np.ndarray, np.ndarray]:
  records = [source[i] for i in range(len(source))]
  return (
    np.stack([np.asarray(r["image"], np.uint8) for r in records]),
    np.asarray([r["label"] for r in records], np.int32),
  )


def load_tfds(name: str, tfds_data_dir: str | None, download: bool) -> Dataset:
  import tensorflow_datasets as tfds  # imported only when used: optional dependency

  train, test = (
    _tfds_arrays(
      tfds.data_source(
        TFDS_NAMES[name], split=split, data_dir=str(_tfds_dir(tfds_data_dir)), download=download
      )
    )
    for split in ("train", "test")
  )
  return Dataset(name, *train, *test, source=f"tfds:{_tfds_dir(tfds_data_dir)}")


def _module_available(module: str) -> bool:
  import importlib.util

  return importlib.util.find_spec(module) is not None


def network_available(
  host: str = "storage.googleapis.com", timeout: float = 2.0, port: int = 443
) -> bool:
  """A quick reachability probe, so that offline runs never wait in download retries."""
  try:
    socket.create_connection((host, port), timeout=timeout).close()
    return True
  except OSError:
    return False


# ------------------------------------------------------------------ bundled and synthetic
def load_bundled() -> Dataset:
  """The MNIST subset shipped in the package: train images 0-2999, all 60000 train labels
  (for the random-label permutation), the 10000 test images and labels. CC BY-SA 3.0."""
  try:
    with np.load(BUNDLED, allow_pickle=False) as z:
      arrays = {k: np.asarray(z[k]) for k in BUNDLED_ARRAY_SHA256}
  except (OSError, ValueError, KeyError, EOFError) as e:
    raise DataError(f"{BUNDLED}: the bundled MNIST subset is unreadable ({e}); reinstall") from None
  for key, want in BUNDLED_ARRAY_SHA256.items():
    if hashlib.sha256(arrays[key].tobytes()).hexdigest() != want:
      raise DataError(f"{BUNDLED}: checksum mismatch in {key}; reinstall swapjax")
  return Dataset(
    "mnist",
    arrays["train_images"][..., None],
    arrays["train_labels"].astype(np.int32),
    arrays["test_images"][..., None],
    arrays["test_labels"].astype(np.int32),
    source="bundled MNIST subset (CC BY-SA 3.0)",
  )


def synthetic(name: str, num_train: int, num_test: int, seed: int = 0) -> Dataset:
  """Random images and labels with the dataset's shapes (no dataset needed)."""
  rng = np.random.default_rng(seed)
  shape = SHAPES[name]
  return Dataset(
    name,
    rng.integers(0, 256, (num_train, *shape), np.uint8),
    rng.integers(0, NUM_CLASSES, num_train).astype(np.int32),
    rng.integers(0, 256, (num_test, *shape), np.uint8),
    rng.integers(0, NUM_CLASSES, num_test).astype(np.int32),
    source="synthetic",
  )


def load(
  name: str,
  source: str = "auto",
  data_dir: str | None = None,
  tfds_data_dir: str | None = None,
  num_train: int = 0,
  num_test: int = 0,
  seed: int = 0,
) -> Dataset:
  """Loads `name` from the first available source (see the module docstring); a generated
  data set (swapjax.generated) is made from `seed` whatever the source."""
  from swapjax import generated

  if name in generated.GENERATORS:
    return generated.load(name, seed)
  if source == "synthetic":
    return synthetic(name, num_train, num_test, seed)
  if source in ("auto", "files") and data_dir:
    return load_files(data_dir, name)
  if source == "files":
    raise DataError("source=files needs --data_dir")
  if source in ("auto", "tfds"):
    if _module_available("tensorflow_datasets") and _tfds_prepared(name, tfds_data_dir):
      return load_tfds(name, tfds_data_dir, download=False)
    if (
      _module_available("tensorflow_datasets")
      and _module_available("tensorflow")
      and network_available()
    ):
      logging.info("downloading %s with tensorflow-datasets", name)
      return load_tfds(name, tfds_data_dir, download=True)
    if source == "tfds":
      raise DataError(
        f"{name}: no prepared tensorflow-datasets directory at "
        f"{_tfds_dir(tfds_data_dir)} and no download possible "
        "(needs tensorflow-datasets, TensorFlow and the network)"
      )
  if source in ("auto", "bundled") and name == "mnist":
    if num_train <= 3000 and num_test <= 10_000 and BUNDLED.exists():
      return load_bundled()
    if source == "bundled":
      raise DataError(
        f"the bundled MNIST subset has 3000 train and 10000 test images; "
        f"{num_train} and {num_test} were asked for"
      )
  raise DataError(f"{name}: no data found offline; {how_to_provide(name)}")
