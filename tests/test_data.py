"""Data sources: original files with checksums, safe unpickling, clear errors, offline fast fail."""

import gzip
import pickle
import shutil
import socket
import time

import numpy as np
import pytest

from swapjax import data


def test_mnist_idx_from_shared(shared_data):
  ds = data.load("mnist", data_dir=str(shared_data))
  assert ds.train_images.shape == (60000, 28, 28, 1) and ds.test_images.shape[0] == 10000
  assert np.bincount(ds.train_labels)[0] == 5923 and ds.train_images.dtype == np.uint8


def test_cifar_subset_from_shared(shared_data):
  ds = data.load("cifar10", data_dir=str(shared_data))
  assert ds.train_images.shape == (10000, 32, 32, 3) and list(ds.train_labels[:5]) == [
    6,
    9,
    9,
    4,
    1,
  ]
  assert ds.train_images[..., 0].sum(dtype=np.int64) == 1288517123


def test_bundled_subset_matches_the_original_files(shared_data):
  bundled = data.load_bundled()
  full = data.load("mnist", data_dir=str(shared_data))
  np.testing.assert_array_equal(bundled.train_images, full.train_images[:3000])
  np.testing.assert_array_equal(bundled.train_labels, full.train_labels)
  np.testing.assert_array_equal(bundled.test_images, full.test_images)


def _write_idx(path, array, magic):
  header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root, n=20, label_max=9, truncate=False):
  folder = root / "mnist"
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  for split, count in [("train", n), ("t10k", n)]:
    _write_idx(
      folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (count, 28, 28)), 2051
    )
    _write_idx(
      folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, label_max + 1, count), 2049
    )
  if truncate:
    p = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    with gzip.open(p, "wb") as f:
      f.write(raw[:-100])
  return folder


def test_well_formed_files_with_wrong_checksum_are_refused(tmp_path):
  _fake_mnist(tmp_path)
  with pytest.raises(data.DataError, match="checksum mismatch"):
    data.load("mnist", data_dir=str(tmp_path))
  assert data.read_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz").shape == (20, 28, 28)


@pytest.mark.parametrize(
  ("kwargs", "needle"), [({"truncate": True}, "truncated"), ({"label_max": 12}, "out of range")]
)
def test_bad_idx_files_name_the_file(tmp_path, kwargs, needle):
  _fake_mnist(tmp_path, **kwargs)
  with pytest.raises(data.DataError, match=needle) as e:
    data.load("mnist", data_dir=str(tmp_path))
  assert str(tmp_path) in str(e.value)


def test_missing_and_damaged_files(tmp_path, shared_data):
  folder = tmp_path / "mnist"
  folder.mkdir()
  shutil.copy(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", folder)
  with pytest.raises(data.DataError, match="missing mnist file"):
    data.load("mnist", data_dir=str(tmp_path))
  for name in data.IDX_FILES.values():
    shutil.copy(shared_data / "mnist" / name, folder)
  raw = bytearray((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
  raw[-12] ^= 0xFF
  (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(raw))
  with pytest.raises(data.DataError, match="t10k-labels"):
    data.load("mnist", data_dir=str(tmp_path))


def test_empty_data_dir_says_what_is_expected(tmp_path):
  with pytest.raises(data.DataError, match="no cifar10 files found"):
    data.load("cifar10", data_dir=str(tmp_path))
  with pytest.raises(data.DataError, match="no such directory"):
    data.load("cifar10", data_dir=str(tmp_path / "nope"))


class _Evil:
  def __reduce__(self):
    return (print, ("pwned",))


def test_cifar_python_batches_refuse_code(tmp_path):
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  rng = np.random.default_rng(0)
  good = {b"data": rng.integers(0, 255, (4, 3072)).astype(np.uint8), b"labels": [1, 2, 3, 4]}
  (folder / "data_batch_7").write_bytes(pickle.dumps(good))
  images, labels = data._read_cifar_py(folder / "data_batch_7")
  assert images.shape == (4, 32, 32, 3) and list(labels) == [1, 2, 3, 4]
  np.testing.assert_array_equal(images[1].transpose(2, 0, 1).reshape(-1), good[b"data"][1])
  (folder / "data_batch_8").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
  with pytest.raises(data.DataError, match="refusing to load"):
    data._read_cifar_py(folder / "data_batch_8")


def test_cifar_python_layout_and_binary(tmp_path, monkeypatch):
  (tmp_path / "cifar-10-batches-py").mkdir()
  rng = np.random.default_rng(2)
  (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(
    pickle.dumps({b"data": rng.integers(0, 255, (2, 3072)).astype(np.uint8), b"labels": [0, 1]})
  )
  with pytest.raises(data.DataError, match="md5 differs"):  # original names are checksummed
    data._load_cifar(tmp_path)
  shutil.rmtree(tmp_path / "cifar-10-batches-py")
  monkeypatch.setattr(data, "CIFAR_PY_MD5", {})  # the layouts themselves, on small fakes
  rng = np.random.default_rng(1)
  py = tmp_path / "cifar-10-batches-py"
  binary = tmp_path / "cifar-10-batches-bin"
  py.mkdir()
  binary.mkdir()
  for name in ["data_batch_1", "test_batch"]:
    arr = rng.integers(0, 255, (5, 3072)).astype(np.uint8)
    labels = rng.integers(0, 10, 5)
    (py / name).write_bytes(pickle.dumps({b"data": arr, b"labels": labels.tolist()}))
    np.concatenate([labels[:, None], arr], 1).astype(np.uint8).tofile(binary / f"{name}.bin")
  from_py = data._load_cifar(tmp_path)
  shutil.rmtree(py)
  from_bin = data._load_cifar(tmp_path)
  np.testing.assert_array_equal(from_py.train_images, from_bin.train_images)
  np.testing.assert_array_equal(from_py.test_labels, from_bin.test_labels)


def test_offline_without_data_fails_fast():
  """The real path on this offline machine (no mock): one clear error within seconds, not
  tensorflow-datasets' 205 s of download retries."""
  start = time.time()
  with pytest.raises(data.DataError, match="--data_dir"):
    data.load("cifar10")
  assert time.time() - start < 10


def test_network_probe_answers_from_a_real_socket():
  """Guards the probe the offline decision rests on: True for a listening port, False (and
  fast) for a refused one."""
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert data.network_available("127.0.0.1", timeout=2.0, port=port)
  start = time.time()
  assert not data.network_available("127.0.0.1", timeout=2.0, port=port)
  assert time.time() - start < 3


def test_offline_mnist_uses_bundled_subset(monkeypatch):
  monkeypatch.setattr(data, "network_available", lambda *a, **k: False)
  ds = data.load("mnist", num_train=3000, num_test=10000)
  assert ds.source.startswith("bundled") and ds.train_images.shape == (3000, 28, 28, 1)


def test_synthetic_has_the_shapes():
  ds = data.load("cifar10", "synthetic", num_train=10, num_test=4)
  assert ds.train_images.shape == (10, 32, 32, 3) and ds.test_labels.shape == (4,)


def test_tfds_data_source_path_without_tensorflow(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    ds = data.load_tfds("mnist", str(tmp_path), download=False)
  assert ds.train_images.shape == (12, 28, 28, 1) and ds.train_images.dtype == np.uint8
  assert ds.test_labels.shape == (12,) and ds.source.startswith("tfds:")


def test_tfds_is_only_used_when_prepared(tmp_path, monkeypatch):
  monkeypatch.setattr(data, "network_available", lambda *a, **k: False)
  assert not data._tfds_prepared("cifar10", str(tmp_path))
  prepared = tmp_path / "cifar10" / "3.0.2"
  prepared.mkdir(parents=True)
  (prepared / "dataset_info.json").write_text("{}")
  assert data._tfds_prepared("cifar10", str(tmp_path))
