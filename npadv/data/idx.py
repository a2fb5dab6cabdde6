"""Reader and writer for the IDX format used by the MNIST family of data sets.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the
array data in C order, big-endian::

    0x00 0x00 <dtype code> <ndim>   dim_0 ... dim_{ndim-1}   data

The files are usually distributed gzip-compressed; `read_idx` recognises a gzip stream by
its magic bytes (1f 8b), whatever the file is called.
"""
from __future__ import annotations

import gzip as _gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError

__all__ = ["IdxFormatError", "read_idx", "write_idx", "parse_idx"]

# IDX dtype code -> big-endian numpy dtype.
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) -> IDX dtype code, for the writer.
_KIND_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIM = 2**32 - 1
# Bytes read from the file per call, so memory grows only as data actually arrives.
_CHUNK = 1 << 20
# Bytes past the declared data that `read_idx` counts (and discards) for its message.
_TRAILING_COUNT_LIMIT = 1 << 20


class IdxFormatError(DataError):
    """An IDX file (or its gzip wrapper) is malformed. The message names the file.

    A `DataError`, hence a ValueError.
    """


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain.

    The header is read first; then at most the number of data bytes it declares, plus
    one to detect trailing bytes, is read (and, for gzip, decompressed). A small file
    that decompresses to far more than its header declares therefore fails after
    decompressing only that much.

    Args:
        path: file to read. Compression is detected from the first two bytes, not the name.

    Returns:
        array of the shape stored in the file and a native-byte-order dtype: uint8, int8,
        int16, int32, float32 or float64 (e.g. MNIST images: (60000, 28, 28) uint8).
        The array owns its (writable) memory.

    Raises:
        IdxFormatError: corrupt gzip stream, bad magic number, unknown dtype code, header or
            data shorter than declared (truncated), or bytes after the declared data.
        DataError: `path` is a folder.
        FileNotFoundError: `path` does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; an IDX file was expected")
    with open(path, "rb") as f:
        if f.read(2) == _GZIP_MAGIC:
            f.seek(0)
            with _gzip.GzipFile(fileobj=f, mode="rb") as gz:
                try:
                    return _read_stream(gz, str(path))
                except (OSError, EOFError, zlib.error) as exc:
                    raise IdxFormatError(
                        f"{path}: corrupt gzip stream ({exc})"
                    ) from exc
        f.seek(0)
        return _read_stream(f, str(path))


def _read_at_most(stream: BinaryIO, n: int) -> bytearray:
    """Up to `n` bytes from `stream` (fewer only at its end), read in bounded chunks."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(_CHUNK, n - len(out)))
        if not chunk:
            break
        out += chunk
    return out


def _count_rest(stream: BinaryIO, limit: int) -> int:
    """Bytes left in `stream`, counted (and discarded) up to `limit`; `limit` + 1 if more."""
    count = 0
    while count <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - count))
        if not chunk:
            break
        count += len(chunk)
    return count


def _magic(raw: bytes | bytearray, source: str) -> tuple[np.dtype, int]:
    """(dtype, ndim) from the 4-byte magic number at the start of `raw`."""
    if len(raw) < 4:
        raise IdxFormatError(
            f"{source}: truncated header: expected at least 4 bytes of magic number, "
            f"got {len(raw)}"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IdxFormatError(
            f"{source}: bad magic number {bytes(raw[:4]).hex()}: an IDX file starts with two "
            "zero bytes (is this an IDX file?)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IdxFormatError(f"{source}: unknown dtype code 0x{code:02X} (known: {known})")
    return _CODE_TO_DTYPE[code], ndim


def _dims(raw: bytes | bytearray, ndim: int, source: str) -> tuple[int, ...]:
    """The `ndim` big-endian uint32 dimensions after the magic number at the start of `raw`."""
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxFormatError(
            f"{source}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"got {len(raw)}"
        )
    return struct.unpack(f">{ndim}I", bytes(raw[4:header_len]))


def _check_size(
    source: str, dims: tuple[int, ...], dtype: np.dtype, got: int | None, more: bool = False
) -> None:
    """Raise unless `got` data bytes is exactly what `dims` of `dtype` need.

    `more` means the data goes on past `got` bytes, which were all that was counted.
    """
    expected = math.prod(dims) * dtype.itemsize
    need = f"shape {dims} of {dtype.name} needs {expected} data bytes"
    if more:
        raise IdxFormatError(
            f"{source}: trailing bytes: {need}, got more than {got} (over {got - expected} "
            "extra)"
        )
    if got < expected:
        raise IdxFormatError(f"{source}: truncated: {need}, got {got}")
    if got > expected:
        raise IdxFormatError(
            f"{source}: trailing bytes: {need}, got {got} ({got - expected} extra)"
        )


def _to_array(buf, dims: tuple[int, ...], dtype: np.dtype, offset: int = 0) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=dtype, count=math.prod(dims), offset=offset)
    # astype copies: the result is writable, native-endian and does not pin `buf`.
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def _read_stream(stream: BinaryIO, source: str) -> np.ndarray:
    """Read one IDX array from `stream`: the header, then at most the declared data + 1 byte."""
    head = _read_at_most(stream, 4)
    dtype, ndim = _magic(head, source)
    head += _read_at_most(stream, 4 * ndim)
    dims = _dims(head, ndim, source)
    expected = math.prod(dims) * dtype.itemsize
    data = _read_at_most(stream, expected + 1)
    if len(data) > expected:
        rest = _count_rest(stream, _TRAILING_COUNT_LIMIT)
        _check_size(source, dims, dtype, len(data) + min(rest, _TRAILING_COUNT_LIMIT),
                    more=rest > _TRAILING_COUNT_LIMIT)
    _check_size(source, dims, dtype, len(data))
    return _to_array(data, dims, dtype)


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes; `source` names the data in error messages.

    Returns and raises as `read_idx` (except for the gzip step and the folder check).
    """
    dtype, ndim = _magic(raw, source)
    dims = _dims(raw, ndim, source)
    header_len = 4 + 4 * ndim
    _check_size(source, dims, dtype, len(raw) - header_len)
    return _to_array(raw, dims, dtype, offset=header_len)


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = False) -> Path:
    """Write `array` as an IDX file (gzip-compressed when `gzip` is true).

    Args:
        path: destination file, overwritten if present.
        array: any shape with at most 255 dimensions, each < 2**32; dtype uint8, int8, int16,
            int32, float32 or float64 (either byte order).
        gzip: compress the file. The gzip header carries no name or time stamp, so the same
            array always gives the same bytes.

    Returns:
        `path` as a Path.

    Raises:
        ValueError: unsupported dtype, too many dimensions or a dimension too large.
    """
    array = np.asarray(array)
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _KIND_TO_CODE:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, float32 "
            "or float64"
        )
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    if any(d > _MAX_DIM for d in array.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {array.shape}")
    code = _KIND_TO_CODE[key]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()
    payload = header + body
    if gzip:
        payload = _gzip.compress(payload, mtime=0)
    path = Path(path)
    path.write_bytes(payload)
    return path
