"""Where the raw images come from, tried in order:

1. a data directory holding the four official IDX files (gzipped or raw);
2. a prepared TensorFlow Datasets directory (never downloads);
3. the official files, downloaded into a cache directory when a network is
   reachable, verified against pinned sha256 sums.

With none of these, `load_raw_dataset` fails at once and names the variable
that points the pipeline at local files.

Whatever the source, the data is checked against the known sha256 sums
(`check_identity`): the official files of the named dataset are `verified`;
a file of the other dataset (Fashion-MNIST given for MNIST) is refused in
one line; unknown data, such as a user's own IDX files, is accepted and
marked `unverified`. TFDS stores the images in its own order, so its data
is checked by an order-free digest of the examples
(`datasets.DatasetInfo.content_sha256`).

`data_digest` names the data a run reads without reading it through: a
digest of the source's files as stored (a few hundredths of a second for
MNIST). It is in the ingestion's cache key, so data replaced in place is
ingested again, and the ingestion checks that what it read is what the key
named.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sys
import urllib.parse
import urllib.request
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from components import storage
from components.ingestion import datasets
from components.ingestion import examples_io
from components.ingestion import idx
from components.ingestion import split as split_lib

DATA_DIR_ENV = "DATA_DIR"


@dataclasses.dataclass
class RawDataset:
  """The official training and test sets as uint8 arrays."""
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str  # 'idx:<dir>', 'tfds:<dir>' or 'download:<dir>'
  checksums: Dict[str, str]  # file name -> sha256 of uncompressed bytes
  verified: bool = False  # every file is the named dataset's official one


@dataclasses.dataclass
class StagedDataset:
  """The dataset staged for streaming: pixels in local raw uint8 files read a
  chunk at a time (`examples_io.PixelFile`); labels and each training
  image's split hash in memory (9 bytes an image)."""
  train_pixels: examples_io.PixelFile
  train_labels: np.ndarray
  train_positions: np.ndarray  # split.hash_positions of each training image
  test_pixels: examples_io.PixelFile
  test_labels: np.ndarray
  source: str
  checksums: Dict[str, str]
  verified: bool = False


def stage_raw_dataset(dataset: str, staging_dir: str,
                      data_dir: Optional[str] = None,
                      tfds_data_dir: Optional[str] = None,
                      cache_dir: Optional[str] = None) -> StagedDataset:
  """`load_raw_dataset`'s sources, checks and errors, but streamed: the IDX
  files are read (and decompressed) a chunk at a time into raw files in the
  local `staging_dir`, so memory does not grow with the data. Every file is
  read and checked before this returns."""
  info = datasets.get_dataset_info(dataset)
  if data_dir:
    return check_identity(stage_idx_dir(data_dir, staging_dir), info,
                          data_dir)
  if tfds_data_dir and _tfds_prepared(dataset, tfds_data_dir):
    return check_identity(stage_arrays(load_tfds(dataset, tfds_data_dir),
                                       staging_dir), info, tfds_data_dir)
  if cache_dir and (_downloaded(info, cache_dir) or
                    network_reachable(info.download_url)):
    target = download(info, cache_dir)
    return check_identity(stage_idx_dir(target, staging_dir, verify=info),
                          info, target)
  raise idx.DataError(
      data_dir or tfds_data_dir or "<no data directory>",
      f"no local copy of {dataset} and no network: set {DATA_DIR_ENV} to a "
      "directory with the four official IDX files")


def load_raw_dataset(dataset: str, data_dir: Optional[str] = None,
                     tfds_data_dir: Optional[str] = None,
                     cache_dir: Optional[str] = None) -> RawDataset:
  """Loads `dataset` from the first source that has it (see module doc)."""
  info = datasets.get_dataset_info(dataset)
  if data_dir:
    return check_identity(load_idx_dir(data_dir), info, data_dir)
  if tfds_data_dir and _tfds_prepared(dataset, tfds_data_dir):
    return check_identity(load_tfds(dataset, tfds_data_dir), info,
                          tfds_data_dir)
  if cache_dir and (_downloaded(info, cache_dir) or
                    network_reachable(info.download_url)):
    target = download(info, cache_dir)
    return check_identity(load_idx_dir(target, verify=info), info, target)
  raise idx.DataError(
      data_dir or tfds_data_dir or "<no data directory>",
      f"no local copy of {dataset} and no network: set {DATA_DIR_ENV} to a "
      "directory with the four official IDX files")


def check_identity(raw: RawDataset, info: datasets.DatasetInfo,
                   location: str) -> RawDataset:
  """`raw`, marked verified if all four files are `info`'s official ones
  (or, for data without files, such as TFDS's: both splits hold exactly the
  official examples, `content_digest`).

  Raises a one-line DataError if any file or split is another dataset's
  official one. Other (unknown) data stays unverified.
  """
  official = {other.name: {**other.sha256, **other.content_sha256}
              for other in datasets.DATASETS.values()}
  for stem, digest in raw.checksums.items():
    for name, sums in official.items():
      if name != info.name and sums.get(stem) == digest:
        raise idx.DataError(
            os.path.join(location, stem),
            f"this is {name}'s official {_what(stem)}, not {info.name}'s: "
            f"point the data directory at {info.name} or set "
            f"DATASET={name}")
  mine = official[info.name]
  raw.verified = bool(raw.checksums) and all(
      mine.get(stem) == digest for stem, digest in raw.checksums.items()) and (
          set(raw.checksums) in (set(info.sha256), set(info.content_sha256)))
  return raw


def _what(stem: str) -> str:
  return "file" if stem in datasets.IDX_FILES.values() else f"{stem} split"


def content_digest(images: np.ndarray, labels: np.ndarray) -> str:
  """sha256 of a split's examples in any order: of the sorted sha256 of each
  example's label byte and pixels (uint8)."""
  flat = np.ascontiguousarray(images, np.uint8).reshape(len(images), -1)
  rows = sorted(hashlib.sha256(bytes([int(label)]) + row.tobytes()).digest()
                for row, label in zip(flat, labels))
  digest = hashlib.sha256()
  for row in rows:
    digest.update(row)
  return digest.hexdigest()


def find_idx_file(data_dir: str, stem: str) -> str:
  """Returns the path of `stem` or `stem.gz` in `data_dir`."""
  for name in (stem + ".gz", stem):
    path = os.path.join(data_dir, name)
    if tf.io.gfile.exists(path):
      return path
  return os.path.join(data_dir, stem + ".gz")  # reported as missing


def _check_data_dir(data_dir: str) -> Dict[str, str]:
  """The paths of the four IDX files in `data_dir`, once it is readable."""
  if not tf.io.gfile.isdir(data_dir):
    raise idx.DataError(data_dir, "data directory does not exist")
  try:
    tf.io.gfile.listdir(data_dir)
  except (tf.errors.OpError, OSError):
    raise idx.DataError(data_dir, "data directory is not readable") from None
  if not storage.is_remote(data_dir) and not os.access(
      data_dir, os.R_OK | os.X_OK):
    raise idx.DataError(data_dir, "data directory is not readable")
  return {key: find_idx_file(data_dir, stem)
          for key, stem in datasets.IDX_FILES.items()}


def _verify(sums: Dict[str, str],
            verify: Optional[datasets.DatasetInfo]) -> Dict[str, str]:
  """{file stem: sha256}; with `verify`, each must be the official sum."""
  if verify is not None:
    for path, digest in sums.items():
      stem = os.path.basename(path).removesuffix(".gz")
      if verify.sha256[stem] != digest:
        raise idx.DataError(path, f"sha256 {digest} does not match the "
                            f"official {verify.sha256[stem]}")
  return {os.path.basename(p).removesuffix(".gz"): s for p, s in sums.items()}


def stage_idx_dir(data_dir: str, staging_dir: str,
                  verify: Optional[datasets.DatasetInfo] = None
                  ) -> StagedDataset:
  """Streams the four IDX files of `data_dir` into `staging_dir`."""
  files = _check_data_dir(data_dir)
  train_pixels, train_labels, train_positions, train_sums = stage_pair(
      files["train_images"], files["train_labels"],
      os.path.join(staging_dir, "train.u8"), with_positions=True)
  test_pixels, test_labels, _, test_sums = stage_pair(
      files["test_images"], files["test_labels"],
      os.path.join(staging_dir, "test.u8"), with_positions=False)
  return StagedDataset(train_pixels, train_labels, train_positions,
                       test_pixels, test_labels, source=f"idx:{data_dir}",
                       checksums=_verify({**train_sums, **test_sums}, verify))


def stage_pair(images_path: str, labels_path: str, pixels_path: str,
               with_positions: bool):
  """Streams an images file into the raw file `pixels_path` and reads its
  labels, with `idx.read_pair`'s checks; returns (PixelFile, labels, split
  hash positions or None, {path: sha256})."""
  streamed = idx.StreamedImages()
  positions = []
  with open(pixels_path, "wb") as out:
    for block in idx.stream_images(images_path, streamed):
      out.write(block.data if block.flags.c_contiguous else block.tobytes())
      if with_positions:
        positions.append(split_lib.hash_positions(block))
  labels, labels_sum = idx.read_labels(labels_path)
  if streamed.count != len(labels):
    raise idx.DataError(labels_path, f"{len(labels)} labels but {images_path} "
                        f"has {streamed.count} images")
  if not streamed.count:
    raise idx.DataError(images_path, "contains no images")
  hashes = (np.concatenate(positions) if with_positions else None)
  return (examples_io.PixelFile(pixels_path, streamed.count), labels, hashes,
          {images_path: streamed.sha256, labels_path: labels_sum})


def stage_arrays(raw: RawDataset, staging_dir: str) -> StagedDataset:
  """An in-memory `RawDataset` (e.g. from TFDS) as a `StagedDataset`."""
  pixels = {}
  for name, images in (("train", raw.train_images),
                       ("test", raw.test_images)):
    path = os.path.join(staging_dir, f"{name}.u8")
    np.ascontiguousarray(images, np.uint8).tofile(path)
    pixels[name] = examples_io.PixelFile(path, len(images))
  return StagedDataset(pixels["train"], raw.train_labels,
                       split_lib.hash_positions(raw.train_images),
                       pixels["test"], raw.test_labels, source=raw.source,
                       checksums=raw.checksums, verified=raw.verified)


def load_idx_dir(data_dir: str,
                 verify: Optional[datasets.DatasetInfo] = None) -> RawDataset:
  """Reads the four official IDX files from `data_dir` into memory."""
  files = _check_data_dir(data_dir)
  train_images, train_labels, train_sums = idx.read_pair(
      files["train_images"], files["train_labels"])
  test_images, test_labels, test_sums = idx.read_pair(
      files["test_images"], files["test_labels"])
  checksums = _verify({**train_sums, **test_sums}, verify)
  return RawDataset(train_images, train_labels, test_images, test_labels,
                    source=f"idx:{data_dir}", checksums=checksums)


def _tfds_prepared(dataset: str, tfds_data_dir: str) -> bool:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    return tfds.builder(dataset, data_dir=tfds_data_dir).is_prepared()
  except Exception:  # pylint: disable=broad-except
    return False


def load_tfds(dataset: str, tfds_data_dir: str) -> RawDataset:
  """Reads a prepared TensorFlow Datasets copy (no download)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(dataset, data_dir=tfds_data_dir)
  arrays = {}
  for split in ("train", "test"):
    batches = list(tfds.as_numpy(builder.as_dataset(split=split).batch(8192)))
    arrays[split] = (
        np.concatenate([b["image"] for b in batches]).astype(np.uint8).reshape(
            -1, 28, 28),
        np.concatenate([b["label"] for b in batches]).astype(np.uint8))
  return RawDataset(*arrays["train"], *arrays["test"],
                    source=f"tfds:{tfds_data_dir}",
                    checksums={split: content_digest(*arrays[split])
                               for split in ("train", "test")})


def network_reachable(url: str, timeout: float = 3.0) -> bool:
  """True when the download of `url` can start: the proxy that urllib would
  use for it (`HTTPS_PROXY`, unless `NO_PROXY` names the host) or else the
  host itself answers a TCP connection."""
  parsed = urllib.parse.urlparse(url)
  address = (parsed.hostname, parsed.port or 443)
  proxy = urllib.request.getproxies().get(parsed.scheme)
  if proxy and not urllib.request.proxy_bypass(parsed.hostname):
    proxy_url = urllib.parse.urlparse(proxy if "://" in proxy
                                      else f"http://{proxy}")
    address = (proxy_url.hostname,
               proxy_url.port or (443 if proxy_url.scheme == "https" else 80))
  try:
    socket.create_connection(address, timeout=timeout).close()
    return True
  except OSError:
    return False


def _downloaded(info: datasets.DatasetInfo, cache_dir: str) -> bool:
  """Whether an earlier download left all four files in `cache_dir` (they
  are verified again when read)."""
  target = os.path.join(cache_dir, info.name)
  return all(os.path.exists(os.path.join(target, stem + ".gz"))
             for stem in datasets.IDX_FILES.values())


# --- data_digest: the data a run reads, for the cache keys -------------------

OFFICIAL_PREFIX = "official:"  # downloaded data: verified when read


def data_digest(dataset: str, data_dir: Optional[str] = None,
                tfds_data_dir: Optional[str] = None,
                cache_dir: Optional[str] = None) -> str:
  """A digest of the data `stage_raw_dataset` would read, from the same
  source: sha256 over the names and stored bytes of the four IDX files of
  `data_dir`, or of the prepared TFDS dataset's files; for a download,
  `official:<dataset>`, since downloaded files are verified against the
  official sums. Raises DataError where ingestion would (missing files)."""
  info = datasets.get_dataset_info(dataset)
  if data_dir:
    files = _check_data_dir(data_dir)
    return _files_digest([files[key] for key in sorted(files)])
  if tfds_data_dir and _tfds_prepared(dataset, tfds_data_dir):
    return "tfds:" + _files_digest(_tfds_files(dataset, tfds_data_dir))
  return OFFICIAL_PREFIX + info.name


def _files_digest(paths: List[str]) -> str:
  digest = hashlib.sha256()
  for path in paths:
    name = os.path.basename(path)
    with idx.file_errors(path):
      with tf.io.gfile.GFile(path, "rb") as f:
        file_digest = hashlib.sha256()
        while True:
          block = f.read(1 << 22)
          if not block:
            break
          file_digest.update(block)
    digest.update(json.dumps([name, file_digest.hexdigest()]).encode())
  return digest.hexdigest()[:32]


def _tfds_files(dataset: str, tfds_data_dir: str) -> List[str]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  directory = str(tfds.builder(dataset, data_dir=tfds_data_dir).data_dir)
  return sorted(os.path.join(root, name)
                for root, _, names in tf.io.gfile.walk(directory)
                for name in names)


class DataChangedError(idx.DataError):
  """The data changed between the run's start and its ingestion."""


def check_unchanged(expected: str, dataset: str,
                    data_dir: Optional[str] = None,
                    tfds_data_dir: Optional[str] = None,
                    cache_dir: Optional[str] = None) -> str:
  """Raises DataChangedError unless the data still has digest `expected`
  (the ingestion's cache key); returns the digest."""
  actual = data_digest(dataset, data_dir, tfds_data_dir, cache_dir)
  if actual != expected:
    raise DataChangedError(
        data_dir or tfds_data_dir or cache_dir or dataset,
        "the data changed while this run was starting (replaced or edited "
        "in place); rerun to ingest it as it is now")
  return actual


def download(info: datasets.DatasetInfo, cache_dir: str) -> str:
  """Downloads the four official files into `cache_dir/<dataset>`."""
  target = os.path.join(cache_dir, info.name)
  os.makedirs(target, exist_ok=True)
  for stem in datasets.IDX_FILES.values():
    path = os.path.join(target, stem + ".gz")
    if os.path.exists(path):
      continue
    url = info.download_url + stem + ".gz"
    partial = path + ".part"
    urllib.request.urlretrieve(url, partial, _progress_hook(stem))
    sys.stderr.write("\n")
    os.replace(partial, path)  # only complete files get the final name
  return target


def _progress_hook(name: str):
  def hook(blocks: int, block_size: int, total: int) -> None:
    done = min(blocks * block_size, total) if total > 0 else blocks * block_size
    pct = f"{100 * done / total:5.1f}%" if total > 0 else ""
    sys.stderr.write(f"\rdownloading {name}: {done / 1e6:6.1f} MB {pct}")
  return hook
