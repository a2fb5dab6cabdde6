"""Reference labeller of the synthetic sentiment grammar: a sentence's label from its tokens.

    rule_label("The plot was good, but the acting was very dull.")   # -> 0

`rule_label` parses the token sequence independently of the generator (it uses only the
word lists of npadv.text.lexicon) and implements the label rules of npadv.text.grammar:
clause values from negation and intensity, the deciding clause from the connective. It
defines what a sentence's label is; the generator's clean labels must agree with it.
"""
from __future__ import annotations

from .lexicon import CONTRAST, INTENSIFIERS, NEGATION, POLARITY
from .vocab import tokenize

__all__ = ["rule_label"]


def rule_label(sentence: str) -> int:
    """Label a sentence of the synthetic grammar by parsing its tokens: 1 positive, 0 negative.

    Each sentiment word is a clause; its value is polarity x intensity of the preceding
    intensifier (if any), negated when "not" directly precedes the intensifier/adjective.
    The connective then picks the deciding clause as in the docstring of npadv.text.grammar.
    Raises ValueError for text that does not follow the grammar.
    """
    toks = tokenize(sentence)
    values = []
    for i, tok in enumerate(toks):
        polarity = POLARITY.get(tok)
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
