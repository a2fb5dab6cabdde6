"""MNIST-family data sets as NumPy arrays.

Every loader returns ``(x_train, y_train, x_test, y_test)`` with

- ``x``: (N, 1, 28, 28) float32 in [0, 1] (pixel / 255),
- ``y``: (N,) int64 class labels in 0..9.

Data sets:

- ``load_mnist_5k``: 5,000 real MNIST training digits shipped inside the package
  (`mnist_5k.npz`, see MNIST_LICENSE.txt), split 4,000 train / 1,000 test by a fixed
  seeded permutation. Needs no files and no network.
- ``load_mnist``: the full MNIST (60,000 / 10,000), downloaded once and checked by SHA-256.
- ``load_fashion_mnist``: Fashion-MNIST (60,000 / 10,000) from a local folder, the Debian
  package ``dataset-fashion-mnist``, or downloaded once and checked by SHA-256.

Local data folder (the ``data_dir`` argument, else ``$NPADV_DATA``, else ``~/.cache/npadv``)::

    <data_dir>/mnist/          train-images-idx3-ubyte.gz ... (four files)
    <data_dir>/fashion-mnist/  train-images-idx3-ubyte.gz ... (four files)

Fashion-MNIST files may also sit directly in ``$NPADV_DATA`` or ``data_dir``, and each file
may be stored gunzipped (same name without ``.gz``).

Mirrors: ``base_url`` is the URL of the folder holding the four files of one data set. The
environment variable ``NPADV_MIRROR`` names a server laid out like the data folder
(``$NPADV_MIRROR/mnist/<file>``, ``$NPADV_MIRROR/fashion-mnist/<file>``).
"""
from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .download import (
    DATA_ENV,
    MIRROR_ENV,
    ChecksumError,
    DownloadError,
    data_root,
    download,
    sha256_file,
)
from .errors import DataError
from .idx import read_idx

__all__ = [
    "load_mnist_5k",
    "load_mnist",
    "load_fashion_mnist",
    "load_dataset",
    "DATASETS",
    "IDX_FILES",
    "MNIST_SHA256",
    "FASHION_MNIST_SHA256",
    "MNIST_MIRRORS",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_CLASSES",
]

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

IDX_FILES: tuple[str, str, str, str] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
"""File names of both MNIST and Fashion-MNIST, in the order of the returned 4-tuple."""

# SHA-256 of the official gzip files as served by the mirrors below.
MNIST_SHA256: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
})
FASHION_MNIST_SHA256: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
})

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# Folders searched for Fashion-MNIST after $NPADV_DATA (Debian: dataset-fashion-mnist).
# The Debian files have the official content but a normalised gzip header, so their
# SHA-256 differs from FASHION_MNIST_SHA256; files found locally are checked for format
# and shape, not hashed.
SYSTEM_FASHION_MNIST_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)

_MNIST_5K_FILE = "mnist_5k.npz"
_MNIST_5K_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
_MNIST_5K_N = 5000
_MNIST_5K_N_TRAIN = 4000
_IMAGE_SHAPE = (28, 28)
_N_CLASSES = 10


def _to_xy(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images, (N,) integer labels -> (N, 1, 28, 28) float32, (N,) int64."""
    x = images.reshape(len(images), 1, *images.shape[1:]).astype(np.float32)
    x /= np.float32(255.0)
    return x, labels.astype(np.int64)


def load_mnist_5k(seed: int = 0) -> Split:
    """The embedded 5,000-digit MNIST subset, split 4,000 train / 1,000 test.

    The rows (stored sorted by class) are shuffled by
    ``np.random.default_rng(seed).permutation(5000)``; the first 4,000 are the training
    set. With the default seed the split is the same on every machine.

    Args:
        seed: permutation seed (non-negative int).

    Returns:
        x_train (4000, 1, 28, 28) float32 in [0, 1], y_train (4000,) int64,
        x_test (1000, 1, 28, 28) float32 in [0, 1], y_test (1000,) int64.

    Raises:
        ChecksumError: the packaged file is damaged.
    """
    raw = resources.files(__package__).joinpath(_MNIST_5K_FILE).read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != _MNIST_5K_SHA256:
        raise ChecksumError(
            f"packaged {_MNIST_5K_FILE} is damaged: SHA-256 expected {_MNIST_5K_SHA256}, "
            f"got {got}; reinstall npadv"
        )
    with np.load(io.BytesIO(raw)) as npz:
        images, labels = npz["images"], npz["labels"]
    perm = np.random.default_rng(seed).permutation(_MNIST_5K_N)
    train, test = perm[:_MNIST_5K_N_TRAIN], perm[_MNIST_5K_N_TRAIN:]
    return (*_to_xy(images[train], labels[train]), *_to_xy(images[test], labels[test]))


# ----------------------------------------------------------------------------- IDX sets


def _find_idx_files(folder: Path) -> list[Path] | None:
    """The four IDX files in `folder` (each as ``name.gz`` or gunzipped ``name``), or None."""
    found = []
    for name in IDX_FILES:
        candidates = [folder / name, folder / name.removesuffix(".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def _load_idx_set(paths: Sequence[Path]) -> Split:
    """Read and check train images, train labels, test images, test labels (in that order).

    Raises:
        IdxFormatError: a file is not a well-formed IDX file.
        DataError: images not (N, 28, 28) uint8, labels not (N,) uint8 in 0..9, image and
            label counts that differ, or a split with no examples.
    """
    arrays = [read_idx(p) for p in paths]
    out: list[np.ndarray] = []
    for split, img_path, lab_path, images, labels in (
        ("training", paths[0], paths[1], arrays[0], arrays[1]),
        ("test", paths[2], paths[3], arrays[2], arrays[3]),
    ):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
            raise DataError(
                f"{img_path}: expected (N, 28, 28) uint8 images, got {images.shape} "
                f"{images.dtype}"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DataError(
                f"{lab_path}: expected (N,) uint8 labels, got {labels.shape} {labels.dtype}"
            )
        if len(labels) != len(images):
            raise DataError(
                f"{lab_path} has {len(labels)} labels but {img_path} has {len(images)} images"
            )
        if len(images) == 0:
            raise DataError(
                f"{img_path}: 0 {split} images; the {split} split needs at least one example"
            )
        if labels.max() >= _N_CLASSES:
            bad = int(np.argmax(labels >= _N_CLASSES))
            raise DataError(
                f"{lab_path}: labels must be in 0..{_N_CLASSES - 1}, found {labels[bad]} at "
                f"index {bad}"
            )
        out.extend(_to_xy(images, labels))
    return tuple(out)  # type: ignore[return-value]


def _check_folder(folder: Path) -> None:
    """Raise DataError if `folder`, or a folder above it, exists as something else."""
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                raise DataError(f"{path} is a file; it must be a folder to hold the data set")
            return


def _mirrors(base_url: str | None, subdir: str, defaults: Sequence[str]) -> list[str]:
    if base_url:
        return [base_url]
    env = os.environ.get(MIRROR_ENV, "")
    if env:
        return [f"{env.rstrip('/')}/{subdir}/"]
    return list(defaults)


def _fetch_idx_set(
    folder: Path, mirrors: Sequence[str], sha256: Mapping[str, str], timeout: float,
    fetch: bool = True,
) -> list[Path]:
    """Download (or reuse, if the hash matches) the four files into `folder`.

    Mirrors are tried in order per file; if all fail the last error is raised with the
    earlier ones attached as notes. With fetch=False nothing is downloaded: a missing file
    raises FileNotFoundError, one with another hash ChecksumError.
    """
    missing = [name for name in IDX_FILES if name not in sha256]
    if missing:
        raise ValueError(f"sha256 table has no entry for {', '.join(missing)}")
    _check_folder(folder)
    for name in IDX_FILES:
        if (folder / name).is_dir():
            raise DataError(f"{folder / name} is a folder; it must be the IDX file {name}")
    if not fetch:
        for name in IDX_FILES:
            path = folder / name
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found, and download=False")
            got, expected = sha256_file(path), sha256[name].strip().lower()
            if got != expected:
                raise ChecksumError(f"{path}: SHA-256 expected {expected}, got {got} "
                                    "(download=False, so it was not replaced)")
        return [folder / name for name in IDX_FILES]
    paths = []
    for name in IDX_FILES:
        errors: list[Exception] = []
        for base in mirrors:
            url = f"{base.rstrip('/')}/{name}"
            try:
                paths.append(download(url, folder / name, sha256[name], timeout=timeout))
                break
            except (DownloadError, ChecksumError) as exc:
                errors.append(exc)
        else:
            last = errors[-1]
            for earlier in errors[:-1]:
                last.add_note(f"earlier mirror failed too: {earlier}")
            raise last
    return paths


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    *,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    download: bool = True,
) -> Split:
    """The full MNIST: 60,000 training and 10,000 test digits.

    The four official gzip files are kept in ``<data_dir>/mnist/`` (data_dir defaults to
    ``$NPADV_DATA``, else ``~/.cache/npadv``). Each is checked against its SHA-256 and
    downloaded (atomically) only if missing or different.

    Args:
        data_dir: local data folder; overrides ``$NPADV_DATA``.
        base_url: URL of a folder serving the four files; overrides ``$NPADV_MIRROR`` and
            the default mirrors (tried in order).
        sha256: file name -> expected SHA-256; defaults to `MNIST_SHA256`.
        timeout: socket timeout in seconds per download.
        download: fetch missing or different files; False uses only the files present.

    Returns:
        x_train (60000, 1, 28, 28) float32 in [0, 1], y_train (60000,) int64,
        x_test (10000, 1, 28, 28) float32 in [0, 1], y_test (10000,) int64.

    Raises:
        ChecksumError, DownloadError: no mirror gave a file with the expected SHA-256
            (download=False: a file present has another SHA-256).
        FileNotFoundError: download=False and a file is missing.
        IdxFormatError, DataError: a file is malformed or not MNIST-shaped, a split has no
            examples, or a file sits where the data folder should be (both ValueErrors).
    """
    root = Path(data_dir).expanduser() if data_dir is not None else data_root()
    paths = _fetch_idx_set(
        root / "mnist",
        _mirrors(base_url, "mnist", MNIST_MIRRORS),
        MNIST_SHA256 if sha256 is None else sha256,
        timeout,
        download,
    )
    return _load_idx_set(paths)


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    *,
    sha256: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    download: bool = True,
) -> Split:
    """Fashion-MNIST: 60,000 training and 10,000 test images of clothing, 10 classes.

    Looks for the four IDX files (``.gz`` or gunzipped) in, in order:

    1. if `data_dir` is given: ``<data_dir>/fashion-mnist/``, then ``<data_dir>/``;
       if absent they are downloaded into ``<data_dir>/fashion-mnist/`` (no other place
       is searched);
    2. otherwise ``$NPADV_DATA/fashion-mnist/``, ``$NPADV_DATA/``, then
       ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);
       if absent they are downloaded into ``<$NPADV_DATA or ~/.cache/npadv>/fashion-mnist/``.

    Files found locally are checked for format and shape; downloaded files are checked
    against `FASHION_MNIST_SHA256`. Class names: `FASHION_MNIST_CLASSES`.

    Args:
        data_dir: local data folder; overrides ``$NPADV_DATA`` and the system folder.
        base_url: URL of a folder serving the four files; overrides ``$NPADV_MIRROR`` and
            the default mirror.
        sha256: file name -> expected SHA-256 for downloads; defaults to
            `FASHION_MNIST_SHA256`.
        timeout: socket timeout in seconds per download.
        download: fetch the files when no folder holds them; False raises instead.

    Returns:
        x_train (60000, 1, 28, 28) float32 in [0, 1], y_train (60000,) int64,
        x_test (10000, 1, 28, 28) float32 in [0, 1], y_test (10000,) int64
        (other sizes if a local folder holds other files).

    Raises:
        ChecksumError, DownloadError: a download did not give the expected file.
        FileNotFoundError: download=False and no folder searched holds the four files.
        IdxFormatError, DataError: a file is malformed or not 28x28 uint8 images with
            labels in 0..9, a split has no examples, or a file sits where the data folder
            should be (both ValueErrors; the message names the file).
    """
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        named = [root / "fashion-mnist", root]
        search = list(named)
    else:
        env = os.environ.get(DATA_ENV, "")
        env_root = Path(env).expanduser()
        named = [env_root / "fashion-mnist", env_root] if env else []
        search = named + list(SYSTEM_FASHION_MNIST_DIRS)
        root = data_root()
    for folder in named:              # the folders the caller named: a file there is a mistake
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder} is a file; it must be a folder to hold the data set")
    for folder in search:
        found = _find_idx_files(folder)
        if found is not None:
            return _load_idx_set(found)
    if not download:
        _check_folder(root / "fashion-mnist")
        raise FileNotFoundError(
            f"Fashion-MNIST not found: none of {', '.join(map(str, search))} holds "
            f"the four IDX files ({', '.join(IDX_FILES)}, or gunzipped), and download=False")
    paths = _fetch_idx_set(
        root / "fashion-mnist",
        _mirrors(base_url, "fashion-mnist", FASHION_MNIST_MIRRORS),
        FASHION_MNIST_SHA256 if sha256 is None else sha256,
        timeout,
    )
    return _load_idx_set(paths)


# ------------------------------------------------------------------------ dispatcher

DATASETS: Mapping[str, Callable[..., Split]] = MappingProxyType({
    "mnist-5k": load_mnist_5k,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
})
"""Data set name -> loader, as used by `load_dataset`."""


def load_dataset(name: str, **kwargs: Any) -> Split:
    """Load a data set by name: "mnist-5k", "mnist" or "fashion-mnist".

    Keyword arguments go to the loader (e.g. ``seed`` for "mnist-5k", ``data_dir`` for the
    others). Returns ``(x_train, y_train, x_test, y_test)`` as described in this module.

    Raises:
        ValueError: unknown name (the message lists the choices).
    """
    try:
        loader = DATASETS[name]
    except (KeyError, TypeError):
        choices = ", ".join(repr(k) for k in DATASETS)
        raise ValueError(f"unknown dataset {name!r}; choose one of {choices}") from None
    return loader(**kwargs)
