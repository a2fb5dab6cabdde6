"""Synthetic sentiment sentences whose label depends on word order, not on the bag of words.

`make_sentiment(n, seed)` returns English-like review sentences and 0/1 labels
(1 = positive). The label follows composition rules - negation, intensity, contrast - and
the generator is built so that **the bag of words carries no information about the
label**: for every sentence it can produce, the sentence with the same multiset of words
but the opposite label is exactly as likely (see "Why a bag of words is at chance"
below). Models that ignore order (bag-of-words, mean-pooled embeddings) therefore sit at
50 % accuracy, whatever their capacity, while `rule_label`, which reads the token
sequence, is always right.

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
sentiment word, an intensifier, "not" or a connective.

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
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .data import tokenize

__all__ = [
    "POSITIVE_WORDS", "NEGATIVE_WORDS", "INTENSIFIERS", "OPENERS", "NAMES", "VOCABULARY",
    "FORMS", "DEFAULT_FORM_WEIGHTS", "DEFAULT_SENTIMENT_WORDS", "vocabulary_size", "make_sentiment",
    "make_sentiment_splits", "rule_label", "rule_labels",
]

# ---------------------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------------------
POSITIVE_WORDS: tuple[str, ...] = tuple("""
    good great excellent wonderful brilliant superb delightful charming enjoyable beautiful
    lovely clever funny witty engaging gripping moving touching stunning memorable powerful
    impressive entertaining fantastic terrific compelling satisfying thoughtful fresh
    inventive elegant heartfelt pleasant magnificent masterful rewarding polished vibrant
    uplifting graceful marvelous riveting sincere smart
""".split())
"""Positive adjectives, roughly most common first (`n_sentiment_words` takes a prefix)."""

NEGATIVE_WORDS: tuple[str, ...] = tuple("""
    bad awful terrible dull boring tedious clumsy bland weak poor dreadful mediocre
    horrible lifeless tiresome pointless forgettable messy shallow stale predictable flat
    painful annoying disappointing sloppy hollow lazy confusing pretentious awkward
    uninspired ugly cheap grating muddled sluggish miserable dismal lame insipid joyless
    overlong trite
""".split())
"""Negative adjectives, roughly most common first."""

INTENSIFIERS: dict[str, int] = {"very": 2, "really": 2, "extremely": 3, "incredibly": 3}
OPENERS: tuple[str, ...] = ("surprisingly", "unexpectedly", "coincidentally")
NEGATION = "not"
CONTRAST = ("but", "yet", "however")
CONCESSIVE = ("although", "though", "even though")

_THING_NOUNS = tuple("""
    film movie story plot script screenplay dialogue acting cast performance ending
    opening beginning climax finale soundtrack score music song cinematography camera
    lighting editing pacing costume set scenery sequel remake adaptation novel book
    chapter episode season series show documentary comedy drama thriller romance
    animation cartoon narration voice premise concept theme message tone mood atmosphere
    humor twist scene sequence shot frame montage flashback subplot backstory chemistry
    rivalry friendship family dog cat horse dragon city town village island river
    mountain forest desert ocean castle house school hospital prison station train car
    ship plane bridge street garden kitchen office studio theater festival audience
    crowd budget trailer poster premiere runtime minute hour night morning summer winter
    autumn spring war journey mission heist trial wedding funeral party election storm
    flood fire letter diary map key door window mirror painting photograph phone
    computer machine weapon sword ring crown treasure coin bottle suitcase umbrella
    bicycle piano violin guitar drum orchestra band choir dance crew stunt chase fight
    battle escape rescue dream memory past future decade century era generation
    neighborhood apartment basement attic rooftop harbor lighthouse museum library
    church temple market restaurant cafe hotel motel highway tunnel valley canyon jungle
    swamp glacier volcano planet galaxy spaceship submarine courtroom classroom
    battlefield farm factory mine lake beach cliff cave meadow orchard vineyard bakery
    pharmacy airport subway stadium arena circus carnival zoo aquarium parade ceremony
    banquet picnic voyage expedition invasion rebellion revolution empire kingdom
    republic colony tribe clan council senate army navy fleet squadron regiment unicorn
    wolf bear fox rabbit deer owl eagle hawk raven crow parrot snake lizard turtle frog
    shark whale dolphin octopus spider beetle butterfly bee ant lion tiger elephant
    giraffe monkey gorilla camel donkey goat sheep pig cow chicken duck goose swan
""".split())

_ROLE_NOUNS = tuple("""
    director actor actress hero heroine villain sidekick character protagonist narrator
    father mother brother sister daughter son uncle aunt grandmother child teenager
    detective soldier doctor teacher lawyer farmer pilot sailor king queen prince
    princess knight wizard robot alien monster ghost critic dancer singer writer
    producer editor composer designer general captain sergeant colonel admiral emperor
    empress duke duchess baron merchant sculptor poet novelist journalist photographer
    surgeon nurse scientist inventor engineer architect carpenter blacksmith fisherman
    hunter shepherd miner gardener librarian professor student governor mayor sheriff
    deputy thief smuggler pirate spy assassin bodyguard butler chauffeur waiter chef
    cook baker tailor barber clerk banker gambler boxer wrestler jockey sprinter swimmer
    climber skier astronaut cowboy samurai ninja viking monk priest nun witch vampire
    werewolf zombie giant dwarf elf goblin troll mermaid
""".split())

_NEUTRAL_ADJECTIVES = tuple("""
    old new young long short first second third final main central early late recent
    original french italian british american japanese silent animated musical historical
    political local rural urban small large tall quiet red blue green black white grey
    little big middle last entire whole other same foreign modern ancient rainy northern
    southern eastern western coastal wooden digital nightly weekly annual distant nearby
    hidden secret public private domestic industrial medieval futuristic wartime suburban
    teenage elderly minor major supporting leading brief extended restored dubbed
    subtitled german spanish russian chinese indian irish scottish mexican canadian
    australian swedish polish greek egyptian roman victorian colonial royal imperial
    military naval civilian nocturnal seasonal tropical arctic alpine
""".split())

_VERBS = tuple("""
    followed watched visited found lost chased built painted opened closed carried
    borrowed stole guarded crossed entered left met called wrote read sold bought fixed
    hid searched hunted trained taught married hired greeted questioned designed
    described discovered explored climbed sailed drove flew rode played sang studied
    repaired delivered inherited defended invaded ruled mapped filmed recorded
    translated remembered forgot imagined noticed traced tracked interviewed measured
    counted packed cooked baked planted harvested fed washed cleaned locked signed mailed
    shipped rented owned managed adopted escorted summoned replaced rebuilt captured
    released warned followed photographed sketched copied borrowed toured guided
""".split())

_PARTICIPLES = ("directed", "written", "produced", "filmed", "narrated", "composed",
                "designed", "staged", "edited")
_PREPOSITIONS = tuple("""
    in during after before near around across inside outside beyond through throughout
    at on under over behind beside along toward within from for to with about among
    against despite until upon amid
""".split())
_DETERMINERS = ("this", "its", "their", "his", "her", "every", "each", "one")
_LINKS = ("was", "is", "seemed", "felt", "looked", "sounded", "remained")
_GLUE = ("the", "that", "by", "as", "and", NEGATION, "even")


def _make_names(count: int, exclude: set[str]) -> tuple[str, ...]:
    """`count` distinct three-syllable consonant-vowel names, chosen by a fixed
    arithmetic walk over all 70**3 syllable triples (no RNG, so the list never changes)."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    total = len(syllables) ** 3
    names: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(names) < count:
        j = (i * 7919 + 12345) % total  # 7919 is prime and coprime to 70**3
        i += 1
        a, rest = divmod(j, len(syllables) ** 2)
        b, c = divmod(rest, len(syllables))
        name = syllables[a] + syllables[b] + syllables[c]
        if name not in seen and name not in exclude:
            seen.add(name)
            names.append(name)
    return tuple(names)


def _dedupe(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


_THING_NOUNS = _dedupe(_THING_NOUNS)
_ROLE_NOUNS = _dedupe(w for w in _ROLE_NOUNS if w not in _THING_NOUNS)
_NOUNS = _THING_NOUNS + _ROLE_NOUNS
_NEUTRAL_ADJECTIVES = _dedupe(w for w in _NEUTRAL_ADJECTIVES if w not in _NOUNS)
_VERBS = _dedupe(_VERBS)

_FUNCTION_WORDS = set(INTENSIFIERS) | set(OPENERS) | set(CONTRAST) | set(_GLUE) | {
    w for c in CONCESSIVE for w in c.split()}
_FILLER = (set(_NOUNS) | set(_NEUTRAL_ADJECTIVES) | set(_VERBS) | set(_PARTICIPLES)
           | set(_PREPOSITIONS) | set(_DETERMINERS) | set(_LINKS))
NAMES: tuple[str, ...] = _make_names(
    560, exclude=_FILLER | _FUNCTION_WORDS | set(POSITIVE_WORDS) | set(NEGATIVE_WORDS))


def _check_lexicon() -> None:
    """The parser and the balance argument need these word classes to be disjoint."""
    groups = {
        "positive": set(POSITIVE_WORDS), "negative": set(NEGATIVE_WORDS),
        "function": _FUNCTION_WORDS, "filler": _FILLER, "names": set(NAMES),
    }
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = groups[a] & groups[b]
            if both:
                raise RuntimeError(f"lexicon groups {a!r} and {b!r} share {sorted(both)}")
    if len(POSITIVE_WORDS) != len(set(POSITIVE_WORDS)) or len(NEGATIVE_WORDS) != len(
            set(NEGATIVE_WORDS)):
        raise RuntimeError("duplicate sentiment word")
    for group in groups.values():
        for word in group:
            if tokenize(word) != [word]:
                raise RuntimeError(f"lexicon word {word!r} is not a single token")


_check_lexicon()

VOCABULARY: tuple[str, ...] = tuple(sorted(
    _FILLER | _FUNCTION_WORDS | set(POSITIVE_WORDS) | set(NEGATIVE_WORDS) | set(NAMES)))
"""Every token (lower-case, as produced by `tokenize`) the generator can emit."""

_POLARITY = {**{w: 1 for w in POSITIVE_WORDS}, **{w: -1 for w in NEGATIVE_WORDS}}
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


def vocabulary_size() -> int:
    """Number of distinct tokens the generator can emit (``len(VOCABULARY)``)."""
    return len(VOCABULARY)


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------
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
            return f"the {rnd.choice(_NOUNS)}"
        if kind == 1:
            return f"the {rnd.choice(_NEUTRAL_ADJECTIVES)} {rnd.choice(_NOUNS)}"
        if kind == 2:
            return (f"the {rnd.choice(_THING_NOUNS)} {rnd.choice(_PARTICIPLES)} by "
                    f"{rnd.choice(NAMES).capitalize()}")
        if kind == 3:
            return f"the {rnd.choice(_NOUNS)} that {rnd.choice(_VERBS)} the {rnd.choice(_NOUNS)}"
        if kind == 4:
            return f"{rnd.choice(NAMES).capitalize()} as the {rnd.choice(_ROLE_NOUNS)}"
        return f"{rnd.choice(_DETERMINERS)} {rnd.choice(_NOUNS)}"

    def tail(self) -> str:
        rnd = self.rnd
        kind = rnd.randrange(4)
        if kind == 0:
            return ""
        prep = rnd.choice(_PREPOSITIONS)
        if kind == 1:
            return f" {prep} the {rnd.choice(_NOUNS)}"
        if kind == 2:
            return f" {prep} the {rnd.choice(_NEUTRAL_ADJECTIVES)} {rnd.choice(_NOUNS)}"
        return f" {prep} {rnd.choice(NAMES).capitalize()}"

    def clause(self, polarity: int, negated: bool, level: int) -> str:
        """Clause whose adjective has `polarity`, optionally negated, at intensity `level`."""
        rnd = self.rnd
        subject, link = self.subject(), rnd.choice(_LINKS)
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


def _generate(n: int, seed_seq: np.random.SeedSequence, label_noise: float,
              form_weights: Mapping[str, float] | None, n_sentiment_words: int
              ) -> tuple[list[str], np.ndarray]:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be a probability in [0, 1], got {label_noise!r}")
    limit = min(len(POSITIVE_WORDS), len(NEGATIVE_WORDS))
    if not isinstance(n_sentiment_words, (int, np.integer)) or not (
            1 <= n_sentiment_words <= limit):
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
    train = _generate(n_train, train_seq, label_noise, form_weights, n_sentiment_words)
    test = _generate(n_test, test_seq, 0.0, form_weights, n_sentiment_words)
    return train, test


# ---------------------------------------------------------------------------------------
# Rule-based labeller
# ---------------------------------------------------------------------------------------
def rule_label(sentence: str) -> int:
    """Label a sentence of this grammar by parsing its tokens: 1 positive, 0 negative.

    Each sentiment word is a clause; its value is polarity x intensity of the preceding
    intensifier (if any), negated when "not" directly precedes the intensifier/adjective.
    The connective then picks the deciding clause as in the module docstring.
    Raises ValueError for text that does not follow the grammar.
    """
    toks = tokenize(sentence)
    values = []
    for i, tok in enumerate(toks):
        polarity = _POLARITY.get(tok)
        if polarity is None:
            continue
        j, level = i - 1, 1
        if j >= 0 and toks[j] in INTENSIFIERS:
            level, j = INTENSIFIERS[toks[j]], j - 1
        negated = j >= 0 and toks[j] == NEGATION
        values.append(-polarity * level if negated else polarity * level)
    connectives = [(i, t) for i, t in enumerate(toks)
                   if t in CONTRAST or t in ("although", "though", "and")]
    if len(values) == 1 and not connectives:
        decisive = values[0]
    elif len(values) == 2 and len(connectives) == 1:
        pos, word = connectives[0]
        initial = pos == 0 or (pos == 1 and toks[0] == "even")
        if word in CONTRAST:
            decisive = values[1]
        elif word == "and":
            if abs(values[0]) == abs(values[1]):
                raise ValueError(f"additive sentence with equal intensities: {sentence!r}")
            decisive = max(values, key=abs)
        else:  # although / though
            decisive = values[1] if initial else values[0]
    else:
        raise ValueError(f"not a sentence of the synthetic grammar ({len(values)} sentiment "
                         f"words, {len(connectives)} connectives): {sentence!r}")
    return int(decisive > 0)


def rule_labels(sentences: Sequence[str]) -> np.ndarray:
    """`rule_label` of each sentence: (N,) int64."""
    return np.fromiter((rule_label(s) for s in sentences), dtype=np.int64,
                       count=len(sentences))
