"""GLUE / SST-2 style tab-separated files of labelled sentences: reader and writer.

    sentences, labels = read_tsv("train.tsv")    # list[str], (N,) int64
    write_tsv("out.tsv", sentences, labels)      # sentence<TAB>label rows under a header

Errors in a file raise `TextFormatError` (a ValueError) naming the file and the 1-based
line.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .batching import check_labels

__all__ = ["TextFormatError", "read_tsv", "write_tsv"]


class TextFormatError(ValueError):
    """A text data file is malformed. The message starts with ``<path>:<line>:`` (1-based)."""

    def __init__(self, path: str | os.PathLike, line: int, message: str):
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def read_tsv(path: str | os.PathLike, sentence_column: str = "sentence",
             label_column: str = "label") -> tuple[list[str], np.ndarray]:
    """Read a GLUE/SST-2 style tab-separated file of labelled sentences.

    Layout: UTF-8 text (a BOM is tolerated); line 1 is a header of tab-separated column
    names; every following line has exactly as many tab-separated fields. The columns
    named `sentence_column` and `label_column` are located by name (case-sensitive after
    stripping spaces), in any order; other columns are ignored. Sentences are stripped of
    surrounding whitespace; labels must be integers (``[+-]?[0-9]+``). Line endings may be
    LF or CRLF; empty lines at the end of the file are ignored. There is no quoting: a
    field cannot contain a tab or newline.

    Returns:
        sentences: list of N str.
        labels: (N,) int64.

    Raises:
        TextFormatError (a ValueError) naming the file and 1-based line for: an empty
        file or blank header (line 1); a header without the sentence or label column, or
        with a duplicated column name (line 1); an empty line between rows; a row whose
        number of fields differs from the header's; an empty sentence; a non-integer
        label or one outside the int64 range; a header with no rows ("no examples",
        reported at line 2).
    """
    path = Path(path)
    raw_lines = path.read_bytes().split(b"\n")
    while raw_lines and raw_lines[-1].strip(b"\r") == b"":
        raw_lines.pop()  # trailing newline(s)
    if not raw_lines:
        raise TextFormatError(path, 1, "empty file: expected a header line with "
                                       f"'{sentence_column}' and '{label_column}' columns")

    def decode(lineno: int) -> str:
        raw = raw_lines[lineno - 1]
        try:
            text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise TextFormatError(path, lineno, f"not valid UTF-8 ({exc.reason})") from exc
        return text[:-1] if text.endswith("\r") else text

    header = [name.strip() for name in decode(1).split("\t")]
    if header == [""]:
        raise TextFormatError(path, 1, "blank header line")
    for name in header:
        if name and header.count(name) > 1:
            raise TextFormatError(path, 1, f"duplicate column {name!r} in header {header!r}")
    missing = [c for c in (sentence_column, label_column) if c not in header]
    if missing:
        raise TextFormatError(path, 1, f"header {header!r} lacks column(s) "
                                       f"{', '.join(repr(c) for c in missing)}")
    s_col, l_col, n_cols = header.index(sentence_column), header.index(label_column), len(header)

    sentences: list[str] = []
    labels: list[int] = []
    for lineno in range(2, len(raw_lines) + 1):
        line = decode(lineno)
        if line.strip() == "":
            raise TextFormatError(path, lineno, "empty line")
        fields = line.split("\t")
        if len(fields) != n_cols:
            raise TextFormatError(path, lineno, f"expected {n_cols} tab-separated fields "
                                                f"(header {header!r}), found {len(fields)}")
        sentence, label = fields[s_col].strip(), fields[l_col].strip()
        if not sentence:
            raise TextFormatError(path, lineno, f"empty {sentence_column!r} field")
        if not _INT_RE.fullmatch(label):
            raise TextFormatError(path, lineno, f"label {label!r} is not an integer")
        value = int(label)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise TextFormatError(path, lineno, f"label {label!r} is out of the int64 range "
                                                f"[{_INT64_MIN}, {_INT64_MAX}]")
        sentences.append(sentence)
        labels.append(value)
    if not sentences:
        raise TextFormatError(path, 2, "no examples: the file has a header but no rows")
    return sentences, np.array(labels, dtype=np.int64)


def write_tsv(path: str | os.PathLike, sentences: Sequence[str], labels: np.ndarray) -> None:
    """Write ``sentence<TAB>label`` rows under a ``sentence\\tlabel`` header (UTF-8, LF).

    Raises ValueError if lengths differ, labels are not integers, or a sentence contains a
    tab or newline (the format has no quoting) or is blank.
    """
    y = check_labels(labels, len(sentences), "sentences")
    rows = ["sentence\tlabel"]
    for i, (sentence, label) in enumerate(zip(sentences, y.tolist(), strict=True)):
        if any(ch in sentence for ch in "\t\r\n") or not sentence.strip():
            raise ValueError(f"sentence {i} is blank or contains a tab/newline: {sentence!r}")
        rows.append(f"{sentence.strip()}\t{label}")
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")
