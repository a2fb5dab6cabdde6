"""The synthetic sentiment task: word lists (npadv.text.lexicon), the generator
(npadv.text.grammar) and the reference labeller (npadv.text.labeller), including the
check that a bag of words cannot solve it."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from npadv.text import grammar
from npadv.text.labeller import rule_label
from npadv.text.lexicon import NEGATIVE_WORDS, OPENERS, POSITIVE_WORDS, VOCABULARY
from npadv.text.vocab import tokenize


def rule_labels(sentences) -> np.ndarray:
    return np.array([rule_label(s) for s in sentences], dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Synthetic generator
# ---------------------------------------------------------------------------------------
def test_generator_is_deterministic_and_seed_dependent():
    s1, y1 = grammar.make_sentiment(300, seed=11)
    s2, y2 = grammar.make_sentiment(300, seed=11)
    s3, y3 = grammar.make_sentiment(300, seed=12)
    assert s1 == s2 and y1.tolist() == y2.tolist()
    assert sum(a != b for a, b in zip(s1, s3, strict=True)) > 290
    assert y1.dtype == np.int64 and set(y1.tolist()) <= {0, 1}
    (tr, ytr), (te, yte) = grammar.make_sentiment_splits(50, 40, seed=11)
    (tr2, _), (te2, yte2) = grammar.make_sentiment_splits(80, 40, seed=11)
    assert te == te2 and yte.tolist() == yte2.tolist()  # test set independent of n_train
    assert tr2[:50] == tr and not set(tr) & set(te)


def test_generator_vocabulary_and_labels():
    assert len(VOCABULARY) == len(set(VOCABULARY)) >= 1000
    sentences, labels = grammar.make_sentiment(4000, seed=0)
    counts = Counter(tok for s in sentences for tok in tokenize(s))
    assert set(counts) <= set(VOCABULARY)
    assert len(counts) >= 1000  # the filler really is varied
    assert abs(labels.mean() - 0.5) < 0.03
    np.testing.assert_array_equal(rule_labels(sentences), labels)
    used = {w for w in POSITIVE_WORDS + NEGATIVE_WORDS if counts[w]}
    assert len(used) == 2 * grammar.DEFAULT_SENTIMENT_WORDS


def test_rule_label_on_hand_written_sentences():
    cases = {
        "Surprisingly, the plot was not good.": 0,
        "Not surprisingly, the plot was good.": 1,
        "The plot was good, but the acting was very dull.": 0,
        "The plot was not good, but the acting was not dull.": 1,
        "Although the plot was good, the acting was dull.": 0,
        "The plot was good, although the acting was dull.": 1,
        "Even though the plot was dull, the acting was good.": 1,
        "The plot was extremely good, and the acting was very dull.": 1,
        "The plot was good, and the acting was not really dull.": 1,
        "The plot was not incredibly good, and the acting was dull.": 0,
    }
    for sentence, label in cases.items():
        assert rule_label(sentence) == label, sentence
    with pytest.raises(ValueError, match="not a sentence of the synthetic grammar"):
        rule_label("The plot was good and the acting was good but the end was bad.")


def test_label_noise_rate():
    clean_s, clean_y = grammar.make_sentiment(4000, seed=3)
    noisy_s, noisy_y = grammar.make_sentiment(4000, seed=3, label_noise=0.2)
    assert noisy_s == clean_s  # noise has its own stream
    assert abs((noisy_y != clean_y).mean() - 0.2) < 0.025  # sd ~ 0.006
    (_, y_tr), (te, y_te) = grammar.make_sentiment_splits(2000, 500, seed=3, label_noise=0.3)
    np.testing.assert_array_equal(rule_labels(te), y_te)  # test labels stay clean
    with pytest.raises(ValueError, match="label_noise"):
        grammar.make_sentiment(5, label_noise=1.5)
    with pytest.raises(ValueError, match="unknown sentence form"):
        grammar.make_sentiment(5, form_weights={"sarcasm": 1.0})
    with pytest.raises(ValueError, match="n_sentiment_words"):
        grammar.make_sentiment(5, n_sentiment_words=0)


def test_every_sentiment_word_and_connective_is_label_neutral():
    """Each word alone says nothing: its positive rate stays within 4 sd of 1/2."""
    sentences, labels = grammar.make_sentiment(6000, seed=4)
    presence: dict[str, list[int]] = {}
    for s, y in zip(sentences, labels.tolist(), strict=True):
        for tok in set(tokenize(s)):
            presence.setdefault(tok, []).append(y)
    words = (list(POSITIVE_WORDS[:grammar.DEFAULT_SENTIMENT_WORDS])
             + list(NEGATIVE_WORDS[:grammar.DEFAULT_SENTIMENT_WORDS])
             + ["not", "but", "however", "although", "and", "very", "extremely"]
             + list(OPENERS))
    for w in words:
        ys = np.array(presence[w])
        z = (ys.mean() - 0.5) / np.sqrt(0.25 / ys.size)
        assert ys.size >= 150 and abs(z) < 4.0, (w, ys.size, ys.mean())


# ---------------------------------------------------------------------------------------
# Key property: a bag of words is at chance, an order-aware model is not
# ---------------------------------------------------------------------------------------
def _bow_features(tokens: list[str]) -> set[str]:
    return set(tokens)


def _order_features(tokens: list[str]) -> set[str]:
    """Uni-, bi- and trigrams, plain and tagged with the sentence half they start in."""
    half = len(tokens) / 2
    feats = set()
    for n in (1, 2, 3):
        for i in range(len(tokens) - n + 1):
            gram = " ".join(tokens[i:i + n])
            feats.add(gram)
            feats.add(("A|" if i < half else "B|") + gram)
    return feats


def _sparse(sentences, featurise, index=None):
    feats = [featurise(tokenize(s)) for s in sentences]
    if index is None:  # features seen at least twice in training
        counts = Counter(f for fs in feats for f in fs)
        index = {f: j for j, f in enumerate(sorted(f for f, c in counts.items() if c >= 2))}
    rows, cols = [], []
    for r, fs in enumerate(feats):
        js = [index[f] for f in fs if f in index]
        rows.extend([r] * len(js))
        cols.extend(js)
    return (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), len(sentences),
            index)


def _fit_logreg(rows, cols, n, d, y, steps=300, lr=0.05, l2=1e-3):
    """Binary-feature logistic regression by full-batch Adam; returns (w, b)."""
    w, b = np.zeros(d), 0.0
    m, v, mb, vb = np.zeros(d), np.zeros(d), 0.0, 0.0
    for t in range(1, steps + 1):
        z = np.bincount(rows, weights=w[cols], minlength=n) + b
        g = (1.0 / (1.0 + np.exp(-z)) - y) / n
        gw = np.bincount(cols, weights=g[rows], minlength=d) + l2 * w
        gb = g.sum()
        m, v = 0.9 * m + 0.1 * gw, 0.999 * v + 0.001 * gw ** 2
        mb, vb = 0.9 * mb + 0.1 * gb, 0.999 * vb + 0.001 * gb ** 2
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        w -= lr * (m / c1) / (np.sqrt(v / c2) + 1e-8)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + 1e-8)
    return w, b


def _heldout_accuracy(train, test, featurise) -> float:
    (s_tr, y_tr), (s_te, y_te) = train, test
    rows, cols, n, index = _sparse(s_tr, featurise)
    w, b = _fit_logreg(rows, cols, n, len(index), y_tr.astype(np.float64))
    rows, cols, n, _ = _sparse(s_te, featurise, index)
    z = np.bincount(rows, weights=w[cols], minlength=n) + b
    return float(((z > 0) == y_te).mean())


def test_bag_of_words_model_works_when_words_suffice():
    """Control: the same BoW model learns adjective polarity when that is the label."""
    train, test = grammar.make_sentiment_splits(3000, 1000, seed=1, form_weights={"single": 1})
    polarity = {w: int(w in POSITIVE_WORDS)
                for w in POSITIVE_WORDS + NEGATIVE_WORDS}

    def relabel(sentences):
        return np.array([next(polarity[t] for t in tokenize(s) if t in polarity)
                         for s in sentences])

    acc = _heldout_accuracy((train[0], relabel(train[0])), (test[0], relabel(test[0])),
                            _bow_features)
    assert acc >= 0.95


def test_bag_of_words_at_chance_order_aware_models_are_not():
    # Default mix: the parser of the token sequence is exact, a bag of words is at chance.
    train, test = grammar.make_sentiment_splits(4000, 1000, seed=0)
    assert (rule_labels(test[0]) == test[1]).mean() == 1.0
    bow = _heldout_accuracy(train, test, _bow_features)
    order = _heldout_accuracy(train, test, _order_features)
    assert 0.40 <= bow <= 0.60, bow  # measured 0.48 (seeds 0-2: 0.48-0.50)
    # Concessive/additive forms are beyond this linear model, so the gap is smaller here.
    assert order >= bow + 0.05, (order, bow)  # measured 0.61 (0.59-0.61)

    # Negation + "but": the position-tagged n-gram model learns most of it from data.
    forms = {"single": 1, "contrast": 1}
    train, test = grammar.make_sentiment_splits(4000, 1000, seed=0, form_weights=forms)
    bow = _heldout_accuracy(train, test, _bow_features)
    order = _heldout_accuracy(train, test, _order_features)
    assert bow <= 0.60, bow  # measured 0.49 (0.49-0.51)
    assert order >= 0.68 and order >= bow + 0.15, (order, bow)  # measured 0.72 (0.72-0.74)
