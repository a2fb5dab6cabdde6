"""Synthetic sentiment sentences whose label depends on word order, not on the bag of words.

`make_sentiment(n, seed)` returns English-like review sentences and 0/1 labels
(1 = positive). The label follows composition rules - negation, intensity, contrast - and
the generator is built so that **the bag of words carries no information about the
label**: for every sentence it can produce, the sentence with the same multiset of words
but the opposite label is exactly as likely (see "Why a bag of words is at chance"
below). Models that ignore order (bag-of-words, mean-pooled embeddings) therefore sit at
50 % accuracy, whatever their capacity, while `npadv.text.labeller.rule_label`, which
reads the token sequence, is always right.

    (train_sentences, train_labels), (test_sentences, test_labels) = make_sentiment_splits(
        1000, 1000, seed=0, form_weights={"single": 1, "contrast": 1}, n_sentiment_words=6)

Grammar
-------
A *clause* is::

    clause := SUBJECT LINK ["not"] [INTENSIFIER] ADJ [TAIL]

    SUBJECT     := "the" NOUN | "the" NEUTRAL_ADJ NOUN | "the" NOUN PARTICIPLE "by" NAME
                 | "the" NOUN "that" VERB "the" NOUN | NAME "as the" NOUN | DET NOUN
    LINK        := was | is | seemed | felt | looked | sounded | remained
    INTENSIFIER := very | really (intensity 2) | extremely | incredibly (intensity 3)
    ADJ         := one of the first `n_sentiment_words` POSITIVE_WORDS (polarity +1)
                 or NEGATIVE_WORDS (polarity -1)
    TAIL        := PREP "the" [NEUTRAL_ADJ] NOUN | PREP NAME

with value ``v = polarity(ADJ) * intensity * (-1 if "not" else +1)``; a missing
intensifier means intensity 1 (outside the additive form a clause has intensity 1, 2 or 3
with probability 0.5, 0.3, 0.2). "not" flips the sign of the whole adjective phrase after
it ("not very good" = -2) - a deliberate simplification. SUBJECT and TAIL are neutral
filler: nouns, neutral adjectives, verbs, prepositions and procedurally generated
person names (capitalised three-syllable names such as "Kadoru"). No filler word is a
sentiment word, an intensifier, "not" or a connective. The word lists are in
npadv.text.lexicon.

A sentence is one of five forms (default mix in `DEFAULT_FORM_WEIGHTS`):

=====================  ========================================  ========================
form                   surface                                   label decided by
=====================  ========================================  ========================
``single``             "Surprisingly, C." with exactly one       sign of v(C)
                       "not": either "Not surprisingly, C." or
                       inside C ("... was not good")
``contrast``           "A, but B." / "A, yet B." /               sign of v(B)
                       "A; however, B."
``concessive_first``   "Although A, B." / "Though A, B." /       sign of v(B)
                       "Even though A, B."
``concessive_last``    "A, although B." / "A, though B." /       sign of v(A)
                       "A, even though B."
``additive``           "A, and B."                               the clause with larger
                                                                 ``|v|`` (the two
                                                                 intensities are a random
                                                                 ordered pair of distinct
                                                                 levels)
=====================  ========================================  ========================

OPENER is one of "surprisingly", "unexpectedly", "coincidentally": "not" before it
negates the adverb, not the review. In every two-clause form the clauses have opposite
signs. Within a clause "not" appears with probability 1/2 and the adjective polarity is
then chosen to give the clause its sign, so every adjective is negated half the time.

Why a bag of words is at chance
-------------------------------
Each form has a word-preserving, label-flipping map that leaves the sampling
distribution unchanged: ``single`` - move "not" between the opener and the adjective;
``contrast`` / ``concessive_*`` - swap the two clauses (their signs are opposite, so the
decisive clause changes sign); ``additive`` - swap the two clauses' intensifiers (the
other clause becomes the stronger one, and it has the opposite sign). Hence
``P(label = 1 | multiset of words) = 1/2`` exactly: each sentiment word, "not", "but" and
every other word occur equally often in positive and negative sentences. Any classifier
of bags of words - linear or not - is at chance on noise-free data.

Difficulty: because no single word predicts the label, a model has to learn each
adjective's polarity through its interactions with "not", intensifiers and clause
position. Fewer sentiment words (`n_sentiment_words`, default 12 per polarity) give more
examples per word; `form_weights` selects the constructions. As a reference, with 4,000
training sentences of the ``single`` and ``contrast`` forms and 12 words per polarity, a
logistic regression on uni/bi/trigrams tagged with the sentence half they fall in reaches
about 0.73 held-out accuracy against 0.5 for a bag of words (about 0.6 on the default
mix: the ``concessive_last`` and ``additive`` forms need more than a linear model over
such features).

Randomness: sentence choices use a `random.Random` stream, label noise a numpy
Generator, both seeded from ``numpy.random.SeedSequence(seed)``; the output is a
deterministic function of the arguments.
"""
from __future__ import annotations

import random
from collections.abc import Mapping

import numpy as np

from .lexicon import (
    CONCESSIVE,
    CONTRAST,
    DETERMINERS,
    INTENSIFIERS,
    LINKS,
    NAMES,
    NEGATIVE_WORDS,
    NEUTRAL_ADJECTIVES,
    NOUNS,
    OPENERS,
    PARTICIPLES,
    POSITIVE_WORDS,
    PREPOSITIONS,
    ROLE_NOUNS,
    THING_NOUNS,
    VERBS,
)

__all__ = ["FORMS", "DEFAULT_FORM_WEIGHTS", "DEFAULT_SENTIMENT_WORDS", "make_sentiment",
           "make_sentiment_splits"]

_BY_LEVEL = {lvl: tuple(w for w, level in INTENSIFIERS.items() if level == lvl) for lvl in (2, 3)}

FORMS: tuple[str, ...] = ("single", "contrast", "concessive_first", "concessive_last",
                          "additive")
DEFAULT_FORM_WEIGHTS: dict[str, float] = {
    "single": 0.3, "contrast": 0.3, "concessive_first": 0.1, "concessive_last": 0.1,
    "additive": 0.2,
}
DEFAULT_SENTIMENT_WORDS = 12
# Intensity of a clause outside the additive form: P(1), P(2), P(3).
_LEVEL_PROBS = (0.5, 0.3, 0.2)



class _Grammar:
    """Sampling state for one call: the RNG and the sentiment words in use."""

    def __init__(self, rnd: random.Random, n_sentiment_words: int):
        self.rnd = rnd
        self.positive = POSITIVE_WORDS[:n_sentiment_words]
        self.negative = NEGATIVE_WORDS[:n_sentiment_words]

    def subject(self) -> str:
        rnd = self.rnd
        kind = rnd.randrange(6)
        if kind == 0:
            return f"the {rnd.choice(NOUNS)}"
        if kind == 1:
            return f"the {rnd.choice(NEUTRAL_ADJECTIVES)} {rnd.choice(NOUNS)}"
        if kind == 2:
            return (f"the {rnd.choice(THING_NOUNS)} {rnd.choice(PARTICIPLES)} by "
                    f"{rnd.choice(NAMES).capitalize()}")
        if kind == 3:
            return f"the {rnd.choice(NOUNS)} that {rnd.choice(VERBS)} the {rnd.choice(NOUNS)}"
        if kind == 4:
            return f"{rnd.choice(NAMES).capitalize()} as the {rnd.choice(ROLE_NOUNS)}"
        return f"{rnd.choice(DETERMINERS)} {rnd.choice(NOUNS)}"

    def tail(self) -> str:
        rnd = self.rnd
        kind = rnd.randrange(4)
        if kind == 0:
            return ""
        prep = rnd.choice(PREPOSITIONS)
        if kind == 1:
            return f" {prep} the {rnd.choice(NOUNS)}"
        if kind == 2:
            return f" {prep} the {rnd.choice(NEUTRAL_ADJECTIVES)} {rnd.choice(NOUNS)}"
        return f" {prep} {rnd.choice(NAMES).capitalize()}"

    def clause(self, polarity: int, negated: bool, level: int) -> str:
        """Clause whose adjective has `polarity`, optionally negated, at intensity `level`."""
        rnd = self.rnd
        subject, link = self.subject(), rnd.choice(LINKS)
        adj = rnd.choice(self.positive if polarity > 0 else self.negative)
        phrase = ("not " if negated else "") + (
            rnd.choice(_BY_LEVEL[level]) + " " if level > 1 else "") + adj
        return f"{subject} {link} {phrase}{self.tail()}"

    def signed_clause(self, sign: int, level: int) -> str:
        """Clause of value sign `sign`: negated half the time, adjective chosen to match."""
        negated = self.rnd.random() < 0.5
        return self.clause(-sign if negated else sign, negated, level)

    def level(self) -> int:
        return self.rnd.choices((1, 2, 3), weights=_LEVEL_PROBS)[0]

    def sentence(self, form: str) -> tuple[str, int]:
        """One sentence of `form` and its label (1 positive, 0 negative)."""
        rnd = self.rnd
        if form == "single":
            polarity = 1 if rnd.random() < 0.5 else -1
            not_in_clause = rnd.random() < 0.5
            opener = rnd.choice(OPENERS)
            clause = self.clause(polarity, not_in_clause, self.level())
            text = f"{opener}, {clause}." if not_in_clause else f"not {opener}, {clause}."
            sign = -polarity if not_in_clause else polarity
            return text[0].upper() + text[1:], int(sign > 0)

        sign_a = 1 if rnd.random() < 0.5 else -1
        if form == "additive":
            level_a, level_b = rnd.sample((1, 2, 3), 2)  # distinct, exchangeable
        else:
            level_a, level_b = self.level(), self.level()
        a = self.signed_clause(sign_a, level_a)
        b = self.signed_clause(-sign_a, level_b)
        if form == "contrast":
            word = rnd.choice(CONTRAST)
            text = f"{a}; however, {b}." if word == "however" else f"{a}, {word} {b}."
            sign = -sign_a
        elif form == "concessive_first":
            text = f"{rnd.choice(CONCESSIVE)} {a}, {b}."
            sign = -sign_a
        elif form == "concessive_last":
            text = f"{a}, {rnd.choice(CONCESSIVE)} {b}."
            sign = sign_a
        elif form == "additive":
            text = f"{a}, and {b}."
            sign = sign_a if level_a > level_b else -sign_a
        else:  # pragma: no cover - forms are validated by the caller
            raise AssertionError(form)
        return text[0].upper() + text[1:], int(sign > 0)


def _form_weights(form_weights: Mapping[str, float] | None) -> list[float]:
    if form_weights is None:
        form_weights = DEFAULT_FORM_WEIGHTS
    unknown = set(form_weights) - set(FORMS)
    if unknown:
        raise ValueError(f"unknown sentence form(s) {sorted(unknown)}; known: {FORMS}")
    weights = [float(form_weights.get(f, 0.0)) for f in FORMS]
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"form weights must be finite, >= 0 and not all 0, got "
                         f"{dict(form_weights)}")
    return weights


def _seed_sequence(seed) -> np.random.SeedSequence:
    if seed is None:
        raise ValueError("seed must be given (an int): the generator is meant to be "
                         "reproducible")
    return np.random.SeedSequence(seed)


def _is_int(value) -> bool:
    """An int or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _generate(n: int, seed_seq: np.random.SeedSequence, label_noise: float,
              form_weights: Mapping[str, float] | None, n_sentiment_words: int,
              n_name: str = "n") -> tuple[list[str], np.ndarray]:
    if not _is_int(n) or n < 0:
        raise ValueError(f"{n_name} must be a non-negative integer, got {n!r}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be a probability in [0, 1], got {label_noise!r}")
    limit = min(len(POSITIVE_WORDS), len(NEGATIVE_WORDS))
    if not _is_int(n_sentiment_words) or not (1 <= n_sentiment_words <= limit):
        raise ValueError(f"n_sentiment_words must be an integer in [1, {limit}], got "
                         f"{n_sentiment_words!r}")
    weights = _form_weights(form_weights)
    text_seq, noise_seq = seed_seq.spawn(2)
    rnd = random.Random(int(text_seq.generate_state(1, np.uint64)[0]))
    grammar = _Grammar(rnd, int(n_sentiment_words))
    sentences: list[str] = []
    labels = np.empty(int(n), dtype=np.int64)
    for i in range(int(n)):  # one form draw per sentence: a smaller n gives a prefix
        sentence, labels[i] = grammar.sentence(rnd.choices(FORMS, weights=weights)[0])
        sentences.append(sentence)
    flips = np.random.default_rng(noise_seq).random(int(n)) < label_noise
    return sentences, labels ^ flips.astype(np.int64)


def make_sentiment(n: int, seed: int = 0, label_noise: float = 0.0,
                   form_weights: Mapping[str, float] | None = None,
                   n_sentiment_words: int = DEFAULT_SENTIMENT_WORDS
                   ) -> tuple[list[str], np.ndarray]:
    """Generate `n` labelled sentences (grammar in the module docstring).

    Args:
        n: number of sentences.
        seed: non-negative int, or a sequence of them (as for `numpy.random.SeedSequence`;
            None is rejected so that the output is always reproducible).
        label_noise: probability of flipping each label, drawn from a stream separate
            from the sentences: the same seed gives the same sentences for any noise.
        form_weights: relative frequency of each form in `FORMS` (missing forms get 0);
            default `DEFAULT_FORM_WEIGHTS`.
        n_sentiment_words: adjectives used per polarity, the first ones of
            `POSITIVE_WORDS` / `NEGATIVE_WORDS` (1..44). Fewer words means more
            examples per word and an easier task to learn.

    Returns:
        sentences: list of n str.
        labels: (n,) int64 in {0, 1}, 1 = positive.

    For m < n, ``make_sentiment(m, seed)`` is the first m items of ``make_sentiment(n,
    seed)`` (same other arguments).
    """
    return _generate(n, _seed_sequence(seed), label_noise, form_weights, n_sentiment_words)


def make_sentiment_splits(n_train: int, n_test: int, seed: int = 0, label_noise: float = 0.0,
                          form_weights: Mapping[str, float] | None = None,
                          n_sentiment_words: int = DEFAULT_SENTIMENT_WORDS
                          ) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    """Independent train and test sets: ``((train_sentences, train_labels), (test_sentences,
    test_labels))``, shapes and arguments as `make_sentiment`.

    The two sets come from separate child streams of `seed`, so the test set does not
    depend on `n_train`. `label_noise` applies to the training labels only; test labels
    are always the clean rule labels.
    """
    train_seq, test_seq = _seed_sequence(seed).spawn(2)
    train = _generate(n_train, train_seq, label_noise, form_weights, n_sentiment_words,
                      "n_train")
    test = _generate(n_test, test_seq, 0.0, form_weights, n_sentiment_words, "n_test")
    return train, test

