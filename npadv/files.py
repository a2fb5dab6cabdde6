"""Writing files: every file npadv writes appears whole or not at all.

    atomic_write(path, data)         bytes or text -> path, atomically
    write_json(path, obj)            strict JSON (null for a value that is not finite) -> path
    atomic_output(path)              a temporary name to hand to a writer (np.savez, savefig,
                                     torch.save); renamed over path when the block ends
    atomic_outputs(path, path2, ...) the same for files that belong together (a model's weights
                                     and its definition): all are renamed, or none is changed
    check_output_path(path, what)    refuse, before any work, a file path that cannot be written
    check_output_dir(path, what)     the same for a folder

An atomic write goes to a temporary file beside the target, `<name>.<random>.tmp<suffix>`
(the suffix kept, so that writers that choose a format by it, or add it, see the right
one), is flushed to disk (fsync), renamed over the target (os.replace) and the folder is
flushed so that the rename survives a crash. The file written gets mode 0o666 & ~umask,
as a new file from open(path, "w") does (the temporary is created with mode 0o666 and the
kernel applies the umask; the mode of a file replaced is not kept). On any failure the
temporary file is removed, the file at the target is byte for byte what it was, and an
OSError (WriteError) names the target. A target that is a symlink is written through: the
file it points to is replaced.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

NAME_MAX, PATH_MAX = 255, 4096       # when the file system does not say (os.pathconf)
TEMP_MARK = ".tmp"                   # <name>.<8 hex digits>.tmp<suffix>


class WriteError(OSError):
    """Writing a file failed and no file was changed (the temporary files are removed);
    str() is one line naming the path. errno is the failure's (ENOSPC for a full disk)."""

    def __str__(self) -> str:
        return f"cannot write {_show(self.filename)}: {self.strerror} (no file was changed)"


class OutputPathError(ValueError):
    """An output path that cannot be written (or must not be); the message is one line that
    names the option or argument it came from and the reason."""


# ---- temporary names -------------------------------------------------------------------
def _show(path) -> str:
    """path as text on one line (a name with a newline or other control character is quoted)."""
    text = os.fspath(path) if path is not None else "?"
    text = text if isinstance(text, str) else os.fsdecode(text)
    return text if text.isprintable() else repr(text)


def _name_max(folder) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _temp_stem(path: Path) -> str:
    """The start of path's temporary names: its name, shortened (by whole characters) when a
    name at the file system's limit would leave no room for `.<random>.tmp<suffix>`."""
    folder = path.parent if path.parent.is_dir() else Path(".")
    room = _name_max(folder) - len(os.fsencode(f".00000000{TEMP_MARK}{path.suffix}"))
    stem = path.name
    while len(os.fsencode(stem)) > room and len(stem) > 1:
        stem = stem[:-1]
    return stem


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def temporaries(path) -> list[Path]:
    """Temporary files beside `path` that a write to it left behind when it was killed:
    `<name>.*.tmp<suffix>` and `<name>.*.tmp`."""
    path = Path(path)
    stem = _glob_escape(_temp_stem(path))
    patterns = {f"{stem}.*{TEMP_MARK}", f"{stem}.*{TEMP_MARK}{_glob_escape(path.suffix)}"}
    return sorted({p for pattern in patterns for p in path.parent.glob(pattern)})


def _fresh_names(path: Path) -> Iterator[Path]:
    """Temporary names for path, `<name>.<8 random hex digits>.tmp<suffix>`, 100 at most."""
    stem = _temp_stem(path)
    for _ in range(100):
        yield path.with_name(f"{stem}.{secrets.token_hex(4)}{TEMP_MARK}{path.suffix}")


def _new_temporary(path: Path) -> Path:
    """Create an empty file beside path under a fresh temporary name and return the name.
    It is created with mode 0o666, which the umask reduces as for any new file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for tmp in _fresh_names(path):
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.fspath(path))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# ---- flushing and renaming -------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    access = os.O_RDWR if os.name == "nt" else os.O_RDONLY      # Windows flushes writers only
    fd = os.open(path, access | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames into it) to disk, where the platform can."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _backup(path: Path) -> Path | None:
    """A second name for path's current content under a temporary name (a hard link, or a
    copy where the file system has none); None if there is no file at path."""
    if not path.exists():
        return None
    for name in _fresh_names(path):
        try:
            os.link(path, name)
        except FileExistsError:
            continue
        except OSError:
            try:
                shutil.copy2(path, name)
            except BaseException:
                _remove(name)
                raise
        return name
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.fspath(path))


def _replace_all(targets: list[Path], temps: list[Path]) -> None:
    """Rename each temporary over its target. Several targets go together: when a rename
    fails, the targets already replaced get their earlier content back (from backups made
    before the first rename), so that either every target is new or none is."""
    backups: list[Path | None] = []
    done: list[int] = []
    try:
        for target in targets[:-1]:
            backups.append(_backup(target))
        for i, (target, tmp) in enumerate(zip(targets, temps, strict=True)):
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise WriteError(e.errno or errno.EIO, e.strerror or str(e),
                                 os.fspath(target)) from e
            done.append(i)
    except BaseException:
        for i in reversed(done):
            with contextlib.suppress(OSError):
                if backups[i] is None:
                    os.unlink(targets[i])
                else:
                    os.replace(backups[i], targets[i])
        raise
    finally:
        for b in backups:
            if b is not None:
                _remove(b)


def _target(path) -> Path:
    """Where writing `path` lands: path itself, or the file a symlink at path points to."""
    if isinstance(path, (str, bytes)) and not path:
        raise OutputPathError("cannot write a file with an empty name")
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _blame(error: OSError, targets: list[Path], temps: list[Path]) -> Path:
    """The target an OSError is about: the one whose temporary it names, else the first."""
    for target, tmp in zip(targets, temps, strict=False):
        if error.filename is not None and os.fspath(error.filename) in (os.fspath(tmp),
                                                                        os.fspath(target)):
            return target
    return targets[0]


@contextlib.contextmanager
def atomic_outputs(*paths) -> Iterator[list[Path]]:
    """Temporary names beside `paths`, one each, for writers that want a file name.

    On a normal exit each temporary is flushed to disk and renamed over its path, all or
    none (see _replace_all); on an exception, the temporaries are removed and the paths are
    untouched. A temporary ends with its path's suffix (np.savez adds ".npz" to names
    without it). Folders are created as needed. OSErrors become WriteError naming the path.
    """
    targets = [_target(p) for p in paths]
    temps: list[Path] = []
    modes: list[int] = []
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            temps.append(_new_temporary(target))
            modes.append(stat.S_IMODE(os.stat(temps[-1]).st_mode))
            if not modes[-1] & stat.S_IWUSR:        # a umask without the owner's write bit:
                os.chmod(temps[-1], modes[-1] | stat.S_IWUSR)   # writable until it is done
        yield temps
        for tmp, mode in zip(temps, modes, strict=True):
            if not tmp.exists():
                raise FileNotFoundError(errno.ENOENT, "the writer left no file", os.fspath(tmp))
            if not mode & stat.S_IWUSR:
                os.chmod(tmp, mode)
            _fsync_file(tmp)
        _replace_all(targets, temps)
    except BaseException as e:
        for tmp in temps:
            _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(e.errno or errno.EIO, e.strerror or str(e),
                             os.fspath(_blame(e, targets, temps))) from e
        raise
    for folder in dict.fromkeys(t.parent for t in targets):
        try:
            _fsync_folder(folder)
        except OSError as e:
            raise OSError(e.errno, f"{_show(folder)}: the new file(s) are in place but the "
                                   f"folder could not be flushed to disk: {e.strerror}") from e


@contextlib.contextmanager
def atomic_output(path) -> Iterator[Path]:
    """A temporary name beside `path` for a writer that wants a file name; renamed over
    `path` when the block ends without an exception (see atomic_outputs).

        with atomic_output("out/plot.png") as tmp:
            fig.savefig(tmp)
    """
    with atomic_outputs(path) as (tmp,):
        yield tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write(path, data: bytes | str) -> Path:
    """Write `data` (text is encoded as UTF-8) to `path` atomically; return the path.

    Raises WriteError (an OSError naming path) when anything fails; the file at path is
    then unchanged and no temporary file is left.
    """
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0))
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    return Path(path)


# ---- strict JSON -----------------------------------------------------------------------
def finite_or_null(obj):
    """obj with every float that is not finite (NaN, ±inf) replaced by None, recursively
    through dicts, lists, tuples and NumPy arrays; NumPy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_or_null(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def strict_json(obj, **dumps_kwargs) -> str:
    """JSON text that any strict parser reads: null stands for a value that is not finite
    (NaN, Infinity and -Infinity are not JSON). dumps_kwargs go to json.dumps."""
    return json.dumps(finite_or_null(obj), allow_nan=False, **dumps_kwargs)


def write_json(path, obj, indent: int | None = 2) -> Path:
    """Write obj to path as strict JSON (see strict_json) and a newline, atomically."""
    return atomic_write(path, strict_json(obj, indent=indent) + "\n")


# ---- output paths, checked before any work ---------------------------------------------
def _prefixes(path: Path) -> list[Path]:
    """path's ancestors from the top down, then path: a/b/c -> [a, a/b, a/b/c]."""
    parts = path.parts
    return [Path(*parts[:i]) for i in range(1, len(parts) + 1)]


def _walk(path: Path, what: str) -> tuple[Path, bool]:
    """Check every existing prefix of path: a folder, no symlink loop, reachable. Returns the
    nearest existing folder above path and whether path itself exists."""
    nearest = Path(".") if not path.is_absolute() else Path(path.anchor)
    prefixes = _prefixes(path)
    for prefix in prefixes:
        try:
            st = os.stat(prefix)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise OutputPathError(f"{what} {_show(path)}: {_show(prefix)} is a symlink loop"
                                      ) from None
            if e.errno == errno.EACCES:
                raise OutputPathError(f"{what} {_show(path)}: cannot reach {_show(prefix)} "
                                      "(permission denied)") from None
            if e.errno == errno.ENAMETOOLONG:
                _check_lengths(path, what, nearest)          # says which name, or the path
                raise OutputPathError(f"{what}: the path is longer than the file system "
                                      "allows") from None
            if e.errno == errno.ENOTDIR:        # an earlier prefix is a file: reported there
                raise OutputPathError(f"{what} {_show(path)}: a part of the path is a file, "
                                      "not a folder") from None
            return nearest, False               # ENOENT: nothing more exists below
        if prefix == path:
            return nearest, True
        if not stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {_show(path)}: {_show(prefix)} is a file, not a "
                                  "folder")
        nearest = prefix
    return nearest, True


def _check_lengths(path: Path, what: str, nearest: Path) -> None:
    limit = _name_max(nearest)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise OutputPathError(f"{what}: the name {_show(shown)} has "
                                  f"{len(os.fsencode(part))} bytes; the file system allows "
                                  f"{limit}")
    try:
        path_max = int(os.pathconf(nearest, "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        path_max = PATH_MAX
    length = len(os.fsencode(os.path.abspath(path)))
    if length >= path_max:
        raise OutputPathError(f"{what}: the path has {length} bytes; the file system allows "
                              f"{path_max - 1}")


def _check_writable(path: Path, what: str, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {_show(path)}: cannot write in {_show(folder)} "
                              "(permission denied)")


def _empty(path, what: str) -> None:
    if path is None or (isinstance(path, (str, bytes)) and not path):
        raise OutputPathError(f"{what}: the path is empty")


def check_output_path(path, what: str, inputs: Iterable = ()) -> Path:
    """Refuse, with one line naming `what` (e.g. "--json") and the reason, a file path that
    cannot or must not be written: an empty path; an existing folder or other non-file
    (a device such as /dev/null, a pipe); a path through a file (/dev/null/x) or a symlink
    loop; a name or path longer than the file system allows; no write permission in the
    nearest existing folder; the same file as one of `inputs` (e.g. the checkpoint being
    read). Returns the path. Raises OutputPathError (a ValueError).
    """
    _empty(path, what)
    path = Path(path)
    nearest, exists = _walk(path, what)
    if exists:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise OutputPathError(f"{what} {_show(path)} is a folder; give a file name")
        if not stat.S_ISREG(mode):
            raise OutputPathError(f"{what} {_show(path)} exists and is not a regular file")
    _check_lengths(path, what, nearest)
    _check_writable(path, what, Path(os.path.realpath(path)).parent if exists else nearest)
    for source in inputs:
        if source is None or not os.fspath(source):
            continue
        same = os.path.realpath(path) == os.path.realpath(source)
        if not same and exists and os.path.exists(source):
            same = os.path.samefile(path, source)
        if same:
            raise OutputPathError(f"{what} {_show(path)} is the input {_show(source)}; "
                                  "writing it would overwrite the input")
    return path


def check_output_dir(path, what: str) -> Path:
    """Refuse, with one line naming `what` (e.g. "--out") and the reason, a folder that
    cannot be written: an empty path; an existing file; a path through a file or a symlink
    loop; a name or path longer than the file system allows; no write permission in it (if
    it exists) or in its nearest existing parent. Returns the path; raises OutputPathError.
    """
    _empty(path, what)
    path = Path(path)
    nearest, exists = _walk(path, what)
    if exists and not path.is_dir():
        raise OutputPathError(f"{what} {_show(path)} is a file; it must be a folder")
    _check_lengths(path, what, path if exists else nearest)
    _check_writable(path, what, path if exists else nearest)
    return path
