"""Tokeniser and vocabulary: text -> lower-case tokens -> integer ids.

    vocab = Vocab.build(tokenize(s) for s in sentences)  # <pad> = 0, <unk> = 1
    ids = vocab.encode(tokenize("It wasn't good."))      # (L,) int64

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

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["PAD", "UNK", "PAD_ID", "UNK_ID", "TOKEN_PATTERN", "tokenize", "Vocab"]

PAD = "<pad>"
UNK = "<unk>"
PAD_ID = 0
UNK_ID = 1
TOKEN_PATTERN = r"[a-z0-9]+(?:'[a-z]+)?"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def tokenize(text: str) -> list[str]:
    """Split `text` into lower-case word tokens (rule in the module docstring).

    Example: ``tokenize("It wasn't GOOD -- 10/10!")`` -> ``["it", "wasn't", "good", "10",
    "10"]``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


class Vocab:
    """Bidirectional token <-> id map with `<pad>` = 0 and `<unk>` = 1.

    Ids 2, 3, ... are the tokens passed to the constructor, in that order. Build one from
    data with `Vocab.build`; save it with `to_array` (an npz-friendly unicode array,
    loadable with ``allow_pickle=False``) and load it with `from_array`.
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

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token list -> (len(tokens),) int64 ids; unknown tokens map to `UNK_ID` (1)."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens, got a str; use tokenize(text)")
        get = self._stoi.get
        return np.fromiter((get(t, UNK_ID) for t in tokens), dtype=np.int64, count=len(tokens))

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
    def to_array(self) -> np.ndarray:
        """(len(self),) unicode array of the tokens by id, `<pad>` and `<unk>` first;
        storable in an npz file without pickling."""
        return np.array(self._itos, dtype=str)

    @classmethod
    def from_array(cls, array: np.ndarray) -> Vocab:
        """Inverse of `to_array`. Raises ValueError if `array` is not a 1-D unicode array
        starting with `<pad>`, `<unk>`."""
        arr = np.asarray(array)
        if arr.ndim != 1 or arr.dtype.kind != "U":
            raise ValueError(f"expected a 1-D unicode array, got dtype {arr.dtype} shape "
                             f"{arr.shape}")
        itos = arr.tolist()
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"saved vocabulary must start with {PAD!r}, {UNK!r}; "
                             f"got {itos[:2]!r}")
        return cls(itos[2:])
