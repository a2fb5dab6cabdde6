"""Checksummed, atomic file downloads and the local data folder.

`download` streams into a temporary file beside the destination, hashes while writing and
moves the file into place only once its SHA-256 matches; on any failure nothing is left
behind, and an existing destination file is untouched.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "ChecksumError",
    "DownloadError",
    "download",
    "sha256_file",
    "data_root",
    "DATA_ENV",
    "MIRROR_ENV",
]

DATA_ENV = "NPADV_DATA"
"""Environment variable naming the local data folder (default ``~/.cache/npadv``)."""
MIRROR_ENV = "NPADV_MIRROR"
"""Environment variable naming a mirror; see `npadv.data.mnist` for its layout."""

_CHUNK = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ChecksumError(ValueError):
    """A file's SHA-256 is not the expected one."""


class DownloadError(OSError):
    """A download failed (HTTP error, network error, short read)."""


def data_root() -> Path:
    """The local data folder: ``$NPADV_DATA`` if set and non-empty, else ``~/.cache/npadv``.

    Read at call time, so changing the environment variable takes effect immediately.
    """
    env = os.environ.get(DATA_ENV, "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "npadv"


def sha256_file(path: str | os.PathLike) -> str:
    """Lower-case hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha256(sha256: str) -> str:
    digest = sha256.strip().lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    return digest


def download(
    url: str, dest: str | os.PathLike, sha256: str, *, timeout: float = 60.0
) -> Path:
    """Download `url` to `dest` unless `dest` already holds bytes with this SHA-256.

    The body is streamed to a temporary file in dest's folder (created if missing) and
    hashed while written; it is renamed onto `dest` (atomic on POSIX) only if the hash
    matches. On any error, including an interrupt, the temporary file is removed, so no
    partial or unverified file is ever left, and a previous `dest` stays as it was.

    Args:
        url: http(s) or file URL.
        dest: final file path.
        sha256: expected SHA-256 of the file, 64 hex digits (case-insensitive).
        timeout: socket timeout in seconds for connecting and each read.

    Returns:
        `dest` as a Path.

    Raises:
        ChecksumError: the downloaded bytes have another SHA-256 (message names url, file,
            expected and actual hashes).
        DownloadError: HTTP error status, network failure or a body shorter than its
            Content-Length.
        ValueError: `sha256` is not 64 hex digits.
    """
    expected = _check_sha256(sha256)
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
    )
    try:
        with tmp:
            h = hashlib.sha256()
            size = 0
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        tmp.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
            except urllib.error.HTTPError as exc:
                exc.close()                                  # it holds the open response
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"{url}: download failed ({reason})") from exc
            if length is not None and length.isdigit() and size != int(length):
                raise DownloadError(
                    f"{url}: short read: Content-Length {length} bytes, got {size}"
                )
            tmp.flush()
            os.fsync(tmp.fileno())
        got = h.hexdigest()
        if got != expected:
            raise ChecksumError(
                f"{dest} from {url}: SHA-256 mismatch: expected {expected}, got {got} "
                f"({size} bytes); the file was not kept"
            )
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, dest)
    except BaseException:
        try:
            os.unlink(tmp.name)
        except FileNotFoundError:
            pass
        raise
    return dest
