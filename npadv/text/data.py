"""Text data: tokeniser, vocabulary, padding, GLUE-style TSV reader and batch iterator.

Pipeline::

    sentences, labels = read_tsv("train.tsv")            # list[str], (N,) int64
    vocab = Vocab.build(tokenize(s) for s in sentences)  # <pad> = 0, <unk> = 1
    ids_list = encode_dataset(sentences, vocab)          # list of (L_i,) int64
    for ids, mask, y in iterate_text_batches(ids_list, labels, 32, seed=0, epoch=e):
        ...                                              # (B, T) int64, (B, T) float32, (B,)

Tokenisation rule (exact): the text is lower-cased, the typographic apostrophe U+2019 is
replaced by ``'``, and the tokens are the non-overlapping matches, left to right, of::

    [a-z0-9]+(?:'[a-z]+)?

so a token is a run of ASCII letters/digits, optionally followed by one apostrophe and a
run of letters. Everything else (punctuation, whitespace, non-ASCII letters) separates
tokens and is dropped. Contractions stay whole: "don't" -> ["don't"], "film's" ->
["film's"]; there is no splitting of "n't" into "not", so negation written as a
contraction is a different token from "not". Hyphenated words split: "well-made" ->
["well", "made"]. A leading apostrophe is dropped ("'tis" -> ["tis"]).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "PAD", "UNK", "PAD_ID", "UNK_ID", "TOKEN_PATTERN", "tokenize", "Vocab", "pad_batch",
    "TextFormatError", "read_tsv", "write_tsv", "encode_dataset", "iterate_text_batches",
]

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1
TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_VOCAB_FORMAT = "npadv.vocab"
_VOCAB_VERSION = 1


def tokenize(text: str) -> list[str]:
    """Split `text` into lower-case word tokens (rule in the module docstring).

    Example: ``tokenize("It wasn't GOOD -- 10/10!")`` -> ``["it", "wasn't", "good", "10",
    "10"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


# ---------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------
class Vocab:
    """Bidirectional token <-> id map with `<pad>` = 0 and `<unk>` = 1.

    Ids 2, 3, ... are the tokens passed to the constructor, in that order. Build one from
    data with `Vocab.build`; save it with `to_dict` (JSON) or `to_array` (an npz-friendly
    unicode array, loadable with ``allow_pickle=False``).
    """

    def __init__(self, tokens: Iterable[str] = ()):
        itos = [PAD, UNK]
        stoi = {PAD: PAD_ID, UNK: UNK_ID}
        for tok in tokens:
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"vocabulary tokens must be non-empty str, got {tok!r}")
            if tok in stoi:
                what = "reserved token" if tok in (PAD, UNK) else "duplicate token"
                raise ValueError(f"{what} {tok!r} in vocabulary token list")
            stoi[tok] = len(itos)
            itos.append(tok)
        self._itos: tuple[str, ...] = tuple(itos)
        self._stoi: dict[str, int] = stoi
        self._itos_array = np.array(itos, dtype=object)

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1,
              max_size: int | None = None) -> Vocab:
        """Vocabulary of the tokens occurring at least `min_freq` times in `token_lists`.

        Ordering is deterministic: frequency descending, ties broken alphabetically. With
        `max_size`, only the first ``max_size - 2`` tokens in that order are kept, so that
        ``len(vocab) <= max_size`` counting `<pad>` and `<unk>`. Tokens equal to `<pad>` or
        `<unk>` in the data are counted as those reserved entries, not added again.
        """
        if isinstance(token_lists, str):
            raise TypeError("Vocab.build expects an iterable of token lists, got a str")
        if not isinstance(min_freq, (int, np.integer)) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        if max_size is not None and (not isinstance(max_size, (int, np.integer))
                                     or max_size < 2):
            raise ValueError(f"max_size must be an integer >= 2 (room for <pad> and <unk>), "
                             f"got {max_size!r}")
        counts: Counter[str] = Counter()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str):
                raise TypeError(f"token list {i} is a str; pass tokenize(text), not text")
            counts.update(tokens)
        for reserved in (PAD, UNK):
            counts.pop(reserved, None)
        kept = sorted((tok for tok, c in counts.items() if c >= min_freq),
                      key=lambda tok: (-counts[tok], tok))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls(kept)

    # ---- lookups ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    def __hash__(self) -> int:
        return hash(self._itos)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    @property
    def itos(self) -> tuple[str, ...]:
        """All tokens by id, including `<pad>` (0) and `<unk>` (1)."""
        return self._itos

    def id_of(self, token: str) -> int:
        """Id of `token`, or `UNK_ID` when it is not in the vocabulary."""
        return self._stoi.get(token, UNK_ID)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token list -> (len(tokens),) int64 ids; unknown tokens map to `UNK_ID` (1)."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens, got a str; use tokenize(text) "
                            "or encode_text(text)")
        get = self._stoi.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), dtype=np.int64, count=len(tokens))

    def encode_text(self, text: str) -> np.ndarray:
        """``encode(tokenize(text))``: (L,) int64."""
        return self.encode(tokenize(text))

    def decode(self, ids: np.ndarray | Sequence[int]) -> list[str]:
        """(L,) integer ids -> list of L tokens (`<pad>`/`<unk>` included as such).

        Raises ValueError for ids outside ``[0, len(self))`` or an array that is not 1-D.
        """
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"decode expects a 1-D id array, got shape {arr.shape}")
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise TypeError(f"decode expects integer ids, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= len(self))
        if bad.any():
            pos = int(np.argmax(bad))
            raise ValueError(f"id {int(arr[pos])} at position {pos} is outside the vocabulary "
                             f"[0, {len(self)})")
        return self._itos_array[arr].tolist()

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-serialisable description: ``{"format", "version", "tokens"}``; `tokens` is
        the full id-ordered list, `<pad>` and `<unk>` first."""
        return {"format": _VOCAB_FORMAT, "version": _VOCAB_VERSION, "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Vocab:
        """Inverse of `to_dict`. Raises ValueError if the dict is not a saved vocabulary."""
        if not isinstance(data, Mapping) or data.get("format") != _VOCAB_FORMAT:
            raise ValueError(f"not a saved vocabulary: expected format {_VOCAB_FORMAT!r}")
        if data.get("version") != _VOCAB_VERSION:
            raise ValueError(f"unsupported vocabulary version {data.get('version')!r} "
                             f"(this code reads version {_VOCAB_VERSION})")
        tokens = data.get("tokens")
        if not isinstance(tokens, (list, tuple)):
            raise ValueError("saved vocabulary has no 'tokens' list")
        return cls._from_itos(list(tokens))

    def to_array(self) -> np.ndarray:
        """(len(self),) unicode array of the tokens by id; storable in an npz file without
        pickling."""
        return np.array(self._itos, dtype=str)

    @classmethod
    def from_array(cls, array: np.ndarray) -> Vocab:
        """Inverse of `to_array`."""
        arr = np.asarray(array)
        if arr.ndim != 1 or arr.dtype.kind != "U":
            raise ValueError(f"expected a 1-D unicode array, got dtype {arr.dtype} shape "
                             f"{arr.shape}")
        return cls._from_itos(arr.tolist())

    @classmethod
    def _from_itos(cls, itos: list) -> Vocab:
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"saved vocabulary must start with {PAD!r}, {UNK!r}; "
                             f"got {itos[:2]!r}")
        return cls(itos[2:])


# ---------------------------------------------------------------------------------------
# Padding and batching
# ---------------------------------------------------------------------------------------
def _as_id_array(seq, index: int) -> np.ndarray:
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise ValueError(f"sequence {index} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"sequence {index} must hold integer ids, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"sequence {index} is empty: every example needs at least one token")
    return arr


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = PAD_ID,
              max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into one matrix.

    Args:
        seqs: N >= 1 one-dimensional integer id arrays (lists accepted), each non-empty.
            An empty sequence raises ValueError naming its index: an example without
            tokens has nothing to classify and would give an all-zero mask row.
        pad_id: id written into padding positions.
        max_len: if given, T is capped at `max_len` and longer sequences keep their first
            `max_len` tokens.

    Returns:
        ids: (N, T) int64, T = longest sequence (capped by `max_len`); row i holds
            sequence i followed by `pad_id`.
        mask: (N, T) float32, 1.0 at real tokens and 0.0 at padding; row i has
            ``min(len_i, T)`` leading ones.
    """
    if len(seqs) == 0:
        raise ValueError("pad_batch needs at least one sequence")
    if max_len is not None and (not isinstance(max_len, (int, np.integer)) or max_len < 1):
        raise ValueError(f"max_len must be a positive integer or None, got {max_len!r}")
    arrays = [_as_id_array(s, i) for i, s in enumerate(seqs)]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    T = int(lengths.max()) if max_len is None else min(int(lengths.max()), int(max_len))
    flat = np.concatenate(arrays).astype(np.int64, copy=False)
    # Position of every flat token inside its own sequence; drop those beyond T.
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(flat.size) - np.repeat(starts, lengths)
    mask = np.arange(T)[None, :] < np.minimum(lengths, T)[:, None]
    ids = np.full((len(arrays), T), pad_id, dtype=np.int64)
    ids[mask] = flat[pos < T]  # boolean assignment fills row-major, matching flat's order
    return ids, mask.astype(np.float32)


def encode_dataset(sentences: Sequence[str], vocab: Vocab) -> list[np.ndarray]:
    """Tokenise and encode each sentence: list of N arrays of shape (L_i,) int64.

    Raises ValueError naming the index of a sentence that has no tokens (see `pad_batch`).
    """
    if isinstance(sentences, str):
        raise TypeError("encode_dataset expects a sequence of sentences, got a str")
    out = []
    for i, sentence in enumerate(sentences):
        tokens = tokenize(sentence)
        if not tokens:
            raise ValueError(f"sentence {i} has no tokens: {sentence!r}")
        out.append(vocab.encode(tokens))
    return out


def _check_labels(labels, n: int, what: str) -> np.ndarray:
    """labels as a 1-D integer array of length n (the number of `what`), else ValueError."""
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iu"):
        raise ValueError(f"labels must be a 1-D integer array, got dtype {y.dtype} shape "
                         f"{y.shape}")
    if n != y.shape[0]:
        raise ValueError(f"{n} {what} but {y.shape[0]} labels")
    return y


def iterate_text_batches(ids_list: Sequence[np.ndarray], labels: np.ndarray, batch_size: int,
                         shuffle: bool = True, seed: int = 0, epoch: int = 0,
                         drop_last: bool = False, max_len: int | None = None,
                         pad_id: int = PAD_ID
                         ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield padded mini-batches ``(ids (B, T) int64, mask (B, T) float32, y (B,) int64)``.

    Each batch is padded to its own longest sequence (see `pad_batch`). With `shuffle`
    the example order is ``np.random.default_rng([seed, epoch]).permutation(N)`` (the
    convention of `npadv.data.batches`), a function of (seed, epoch) alone, so a run is
    reproducible, resumable at any epoch, and each epoch differs; without it the order is
    0..N-1. The last batch may be smaller than `batch_size` unless `drop_last`. Argument
    errors (length mismatch, bad batch_size, non-integer labels) raise at the call.
    """
    y = _check_labels(labels, len(ids_list), "sequences")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    y = y.astype(np.int64, copy=False)
    n = y.shape[0]
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return _batches(ids_list, y, order, batch_size, stop, pad_id, max_len)


def _batches(ids_list, y, order, batch_size, stop, pad_id, max_len):
    # Separate generator so that argument errors surface at the call, not at first next().
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        ids, mask = pad_batch([ids_list[i] for i in idx], pad_id=pad_id, max_len=max_len)
        yield ids, mask, y[idx]


# ---------------------------------------------------------------------------------------
# GLUE / SST-2 style TSV
# ---------------------------------------------------------------------------------------
class TextFormatError(ValueError):
    """A text data file is malformed. The message starts with ``<path>:<line>:`` (1-based)."""

    def __init__(self, path: str | os.PathLike, line: int, message: str):
        self.path = str(path)
        self.line = line
        super().__init__(f"{self.path}:{line}: {message}")


_INT_RE = re.compile(r"[+-]?[0-9]+")


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
        label; a header with no rows ("no examples", reported at line 2).
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
        sentences.append(sentence)
        labels.append(int(label))
    if not sentences:
        raise TextFormatError(path, 2, "no examples: the file has a header but no rows")
    return sentences, np.array(labels, dtype=np.int64)


def write_tsv(path: str | os.PathLike, sentences: Sequence[str], labels: np.ndarray) -> None:
    """Write ``sentence<TAB>label`` rows under a ``sentence\\tlabel`` header (UTF-8, LF).

    Raises ValueError if lengths differ, labels are not integers, or a sentence contains a
    tab or newline (the format has no quoting) or is blank.
    """
    y = _check_labels(labels, len(sentences), "sentences")
    rows = ["sentence\tlabel"]
    for i, (sentence, label) in enumerate(zip(sentences, y.tolist(), strict=True)):
        if any(ch in sentence for ch in "\t\r\n") or not sentence.strip():
            raise ValueError(f"sentence {i} is blank or contains a tab/newline: {sentence!r}")
        rows.append(f"{sentence.strip()}\t{label}")
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")
