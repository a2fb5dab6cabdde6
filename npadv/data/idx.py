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

import numpy as np

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


class IdxFormatError(ValueError):
    """An IDX file (or its gzip wrapper) is malformed. The message names the file."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain.

    Args:
        path: file to read. Compression is detected from the first two bytes, not the name.

    Returns:
        array of the shape stored in the file and a native-byte-order dtype: uint8, int8,
        int16, int32, float32 or float64 (e.g. MNIST images: (60000, 28, 28) uint8).
        The array owns its (writable) memory.

    Raises:
        IdxFormatError: corrupt gzip stream, bad magic number, unknown dtype code, header or
            data shorter than declared (truncated), or bytes after the declared data.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = _gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxFormatError(f"{path}: corrupt gzip stream ({exc})") from exc
    return parse_idx(raw, source=str(path))


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse uncompressed IDX bytes; `source` names the data in error messages.

    Returns and raises as `read_idx` (except for the gzip step).
    """
    if len(raw) < 4:
        raise IdxFormatError(
            f"{source}: truncated header: expected at least 4 bytes of magic number, "
            f"got {len(raw)}"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IdxFormatError(
            f"{source}: bad magic number {raw[:4].hex()}: an IDX file starts with two zero "
            "bytes (is this an IDX file?)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IdxFormatError(f"{source}: unknown dtype code 0x{code:02X} (known: {known})")
    dtype = _CODE_TO_DTYPE[code]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IdxFormatError(
            f"{source}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"got {len(raw)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = math.prod(dims) * dtype.itemsize
    got = len(raw) - header_len
    if got < expected:
        raise IdxFormatError(
            f"{source}: truncated: shape {dims} of {dtype.name} needs {expected} data bytes, "
            f"got {got}"
        )
    if got > expected:
        raise IdxFormatError(
            f"{source}: trailing bytes: shape {dims} of {dtype.name} needs {expected} data "
            f"bytes, got {got} ({got - expected} extra)"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header_len)
    # astype copies: the result is writable, native-endian and does not pin `raw`.
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


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
