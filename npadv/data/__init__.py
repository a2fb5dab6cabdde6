"""Data sets, IDX files, checksummed downloads and mini-batching.

Loaders return ``(x_train, y_train, x_test, y_test)``: x (N, 1, 28, 28) float32 in [0, 1],
y (N,) int64. See `npadv.data.mnist` for where files are looked for and stored. A data file
or folder that is present but unusable raises `DataError` (a ValueError; `IdxFormatError`
is one) with one line naming it and what is wrong.
"""
from .batches import Batches, iterate_batches
from .download import ChecksumError, DownloadError, data_root, download, sha256_file
from .errors import DataError
from .idx import IdxFormatError, read_idx, write_idx
from .mnist import (
    DATASETS,
    FASHION_MNIST_CLASSES,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    load_mnist_5k,
)

__all__ = [
    "Batches",
    "iterate_batches",
    "ChecksumError",
    "DownloadError",
    "DataError",
    "data_root",
    "download",
    "sha256_file",
    "IdxFormatError",
    "read_idx",
    "write_idx",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_5k",
]
