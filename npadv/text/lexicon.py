"""Word lists of the synthetic sentiment grammar (npadv.text.grammar), by word class.

    from npadv.text.lexicon import POSITIVE_WORDS, NEGATIVE_WORDS, VOCABULARY

Sentiment words (`POSITIVE_WORDS`, `NEGATIVE_WORDS`, signed by `POLARITY`), function
words (intensifiers, openers, "not", connectives) and neutral filler (nouns, neutral
adjectives, verbs, participles, prepositions, determiners, linking verbs and generated
person names `NAMES`). The grammar's labels and the argument that a bag of words is at
chance rely on these classes being disjoint and on every word being a single token; the
check runs when this module is imported and raises RuntimeError otherwise. The lists are
fixed (no randomness): `VOCABULARY` is every token the generator can emit.
"""
from __future__ import annotations

from collections.abc import Iterable

from .vocab import tokenize

__all__ = [
    "POSITIVE_WORDS", "NEGATIVE_WORDS", "POLARITY", "INTENSIFIERS", "OPENERS", "NEGATION",
    "CONTRAST", "CONCESSIVE", "THING_NOUNS", "ROLE_NOUNS", "NOUNS", "NEUTRAL_ADJECTIVES",
    "VERBS", "PARTICIPLES", "PREPOSITIONS", "DETERMINERS", "LINKS", "NAMES", "VOCABULARY",
]

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

# Neutral filler of SUBJECT and TAIL (see npadv.text.grammar); the noun and adjective
# lists are deduplicated below, and NAMES are generated to avoid every other word.
THING_NOUNS = tuple("""
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

ROLE_NOUNS = tuple("""
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

NEUTRAL_ADJECTIVES = tuple("""
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

VERBS = tuple("""
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

PARTICIPLES = ("directed", "written", "produced", "filmed", "narrated", "composed",
               "designed", "staged", "edited")
PREPOSITIONS = tuple("""
    in during after before near around across inside outside beyond through throughout
    at on under over behind beside along toward within from for to with about among
    against despite until upon amid
""".split())
DETERMINERS = ("this", "its", "their", "his", "her", "every", "each", "one")
LINKS = ("was", "is", "seemed", "felt", "looked", "sounded", "remained")
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


THING_NOUNS = _dedupe(THING_NOUNS)
ROLE_NOUNS = _dedupe(w for w in ROLE_NOUNS if w not in THING_NOUNS)
NOUNS = THING_NOUNS + ROLE_NOUNS
NEUTRAL_ADJECTIVES = _dedupe(w for w in NEUTRAL_ADJECTIVES if w not in NOUNS)
VERBS = _dedupe(VERBS)

_FUNCTION_WORDS = set(INTENSIFIERS) | set(OPENERS) | set(CONTRAST) | set(_GLUE) | {
    w for c in CONCESSIVE for w in c.split()}
_FILLER = (set(NOUNS) | set(NEUTRAL_ADJECTIVES) | set(VERBS) | set(PARTICIPLES)
           | set(PREPOSITIONS) | set(DETERMINERS) | set(LINKS))
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

POLARITY: dict[str, int] = {**{w: 1 for w in POSITIVE_WORDS}, **{w: -1 for w in NEGATIVE_WORDS}}
"""Sentiment word -> +1 (positive) or -1 (negative)."""
