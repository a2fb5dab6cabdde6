"""Text data pipeline: tokeniser and vocabulary (npadv.text.vocab), padding and batches
(npadv.text.batching), TSV files (npadv.text.tsv)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npadv.text.batching import encode_dataset, iterate_text_batches, pad_batch
from npadv.text.grammar import make_sentiment
from npadv.text.tsv import TextFormatError, read_tsv, write_tsv
from npadv.text.vocab import PAD_ID, UNK_ID, Vocab, tokenize


# ---------------------------------------------------------------------------------------
# Tokeniser
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, tokens", [
    ("The Movie was GOOD.", ["the", "movie", "was", "good"]),
    ("It wasn't bad -- 10/10!", ["it", "wasn't", "bad", "10", "10"]),
    ("the film\u2019s score", ["the", "film's", "score"]),
    ("well-made, 'tis", ["well", "made", "tis"]),
    ("caf\u00e9 ol\u00e9", ["caf", "ol"]),
    ("  \t\n!!", []),
    ("rock'n'roll", ["rock'n", "roll"]),
])
def test_tokenize_examples(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_rejects_non_str():
    with pytest.raises(TypeError, match="str"):
        tokenize(["a", "b"])


# ---------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------
DOCS = [["b", "a", "c", "a"], ["c", "a", "d"], ["e", "b"]]  # a:3, b:2, c:2, d:1, e:1


def test_vocab_ordering_min_freq_and_reserved_ids():
    v = Vocab.build(DOCS, min_freq=2)
    assert v.to_array().tolist() == ["<pad>", "<unk>", "a", "b", "c"]  # freq desc, ties a-z
    assert len(v) == 5 and v.encode(["<pad>", "<unk>"]).tolist() == [PAD_ID, UNK_ID] == [0, 1]
    assert "a" in v and "d" not in v and "<pad>" in v
    assert v.encode(["c", "d", "zzz", "a"]).tolist() == [4, 1, 1, 2]
    assert v.encode(["a"]).dtype == np.int64
    full = Vocab.build(DOCS)
    assert full.to_array().tolist()[2:] == ["a", "b", "c", "d", "e"]
    capped = Vocab.build(DOCS, max_size=4)
    assert capped.to_array().tolist() == ["<pad>", "<unk>", "a", "b"]


def test_vocab_round_trips():
    v = Vocab.build(DOCS)
    ids = v.encode(["e", "a", "nope", "d"])
    assert v.decode(ids) == ["e", "a", "<unk>", "d"]
    assert v.decode(v.encode(["a", "b", "c", "d", "e"])) == ["a", "b", "c", "d", "e"]
    arr = v.to_array()
    assert arr.dtype.kind == "U" and arr.shape == (7,)
    again = Vocab.from_array(arr)
    assert again == v and again.to_array().tolist() == arr.tolist()
    assert again.encode(["e", "a", "nope", "d"]).tolist() == ids.tolist()


def test_vocab_array_survives_npz_without_pickle(tmp_path):
    v = Vocab.build([tokenize("an example sentence, another example")])
    np.savez(tmp_path / "v.npz", vocab=v.to_array())
    with np.load(tmp_path / "v.npz", allow_pickle=False) as f:
        assert Vocab.from_array(f["vocab"]) == v


def test_vocab_errors():
    v = Vocab.build(DOCS)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(DOCS, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(DOCS, max_size=1)
    with pytest.raises(TypeError, match="str"):
        v.encode("abc")
    with pytest.raises(ValueError, match="id 9 at position 1"):
        v.decode(np.array([2, 9]))
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["a", "a"])
    with pytest.raises(ValueError, match="reserved"):
        Vocab(["<unk>"])
    with pytest.raises(ValueError, match="must start with"):
        Vocab.from_array(np.array(["a", "<pad>"]))
    with pytest.raises(ValueError, match="1-D unicode array"):
        Vocab.from_array(np.array([0, 1]))
    with pytest.raises(ValueError, match="1-D unicode array"):
        Vocab.from_array(v.to_array()[None, :])


# ---------------------------------------------------------------------------------------
# Padding and batching
# ---------------------------------------------------------------------------------------
seqs_strategy = st.lists(
    st.lists(st.integers(2, 50), min_size=1, max_size=12).map(
        lambda s: np.array(s, dtype=np.int64)),
    min_size=1, max_size=8)


@given(seqs=seqs_strategy, max_len=st.one_of(st.none(), st.integers(1, 15)))
def test_pad_batch_shapes_and_mask(seqs, max_len):
    ids, mask = pad_batch(seqs, max_len=max_len)
    lengths = [len(s) for s in seqs]
    T = max(lengths) if max_len is None else min(max(lengths), max_len)
    assert ids.shape == mask.shape == (len(seqs), T)
    assert ids.dtype == np.int64 and mask.dtype == np.float32
    for i, s in enumerate(seqs):
        n = min(len(s), T)
        np.testing.assert_array_equal(mask[i], [1.0] * n + [0.0] * (T - n))
        np.testing.assert_array_equal(ids[i, :n], s[:n])
        assert (ids[i, n:] == PAD_ID).all()
    assert mask.sum() == sum(min(n, T) for n in lengths)


def test_pad_batch_values_and_errors():
    ids, mask = pad_batch([[5, 6, 7], np.array([8], dtype=np.int32)], pad_id=-1)
    assert ids.tolist() == [[5, 6, 7], [8, -1, -1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        pad_batch([[1], []])
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])
    with pytest.raises(TypeError, match="sequence 0 must hold integer"):
        pad_batch([np.array([1.5])])
    with pytest.raises(ValueError, match="sequence 0 must be 1-D"):
        pad_batch([np.zeros((2, 2), dtype=np.int64)])


def test_iterate_text_batches_covers_each_example_once_and_is_seeded():
    n = 23
    ids_list = [np.full(1 + i % 5, i, dtype=np.int64) for i in range(n)]  # ids encode i
    labels = np.arange(n) * 10

    def run(**kw):
        return list(iterate_text_batches(ids_list, labels, 4, **kw))

    batches = run(seed=3, epoch=0)
    assert [len(y) for _, _, y in batches] == [4, 4, 4, 4, 4, 3]
    order = np.concatenate([ids[:, 0] for ids, _, _ in batches])
    assert sorted(order.tolist()) == list(range(n)) and order.tolist() != list(range(n))
    for ids, mask, y in batches:
        np.testing.assert_array_equal(y, ids[:, 0] * 10)  # labels stay aligned
        np.testing.assert_array_equal(mask.sum(1), 1 + ids[:, 0] % 5)
        assert ids.shape[1] == int(mask.sum(1).max())  # padded to the batch's longest
    again = np.concatenate([ids[:, 0] for ids, _, _ in run(seed=3, epoch=0)])
    other = np.concatenate([ids[:, 0] for ids, _, _ in run(seed=3, epoch=1)])
    assert again.tolist() == order.tolist() and other.tolist() != order.tolist()
    expected = np.random.default_rng([3, 1]).permutation(n)  # order depends on (seed, epoch)
    np.testing.assert_array_equal(other, expected)
    plain = run(shuffle=False, drop_last=True)
    assert len(plain) == 5 and plain[0][2].tolist() == [0, 10, 20, 30]
    with pytest.raises(ValueError, match="23 sequences but 3 labels"):
        iterate_text_batches(ids_list, labels[:3], 4)  # raised at the call, not lazily
    with pytest.raises(ValueError, match="batch_size"):
        iterate_text_batches(ids_list, labels, 0)


# ---------------------------------------------------------------------------------------
# TSV
# ---------------------------------------------------------------------------------------
def _write(tmp_path, text: str, name="data.tsv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_read_tsv_good_file_any_column_order(tmp_path):
    path = _write(tmp_path, "id\tlabel\tsentence\r\n"
                            "7\t1\tA charming, funny film \r\n"
                            "8\t0\tit was dull\r\n"
                            "9\t-2\tthe plot zigzagged wildly\r\n\r\n")
    sentences, labels = read_tsv(path)
    assert sentences == ["A charming, funny film", "it was dull", "the plot zigzagged wildly"]
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, -2]

    vocab = Vocab.build([tokenize("a funny film it was dull the plot")])
    encoded = encode_dataset(sentences, vocab)
    assert vocab.decode(encoded[0]) == ["a", "<unk>", "funny", "film"]
    assert vocab.decode(encoded[2]) == ["the", "plot", "<unk>", "<unk>"]
    assert (encoded[1] != UNK_ID).all()


def test_write_tsv_round_trip(tmp_path):
    sentences, labels = make_sentiment(20, seed=5)
    write_tsv(tmp_path / "s.tsv", sentences, labels)
    got, got_labels = read_tsv(tmp_path / "s.tsv")
    assert got == sentences and got_labels.tolist() == labels.tolist()
    with pytest.raises(ValueError, match="sentence 1 .*tab"):
        write_tsv(tmp_path / "bad.tsv", ["ok", "a\tb"], np.array([0, 1]))


@pytest.mark.parametrize("content, line, fragment", [
    ("", 1, "empty file"),
    ("\n\n", 1, "empty file"),
    ("sentence\n", 1, "lacks column(s) 'label'"),
    ("text\tlabel\nfine\t1\n", 1, "lacks column(s) 'sentence'"),
    ("sentence\tlabel\tlabel\n", 1, "duplicate column"),
    ("sentence\tlabel\n", 2, "no examples"),
    ("sentence\tlabel\ngood\t1\nbad\t0\nmeh\tpositive\n", 4, "label 'positive' is not an int"),
    ("sentence\tlabel\ngood\t1\nbad\t0.0\n", 3, "not an integer"),
    ("sentence\tlabel\ngood\t1\nbad 0\nugly\t0\n", 3, "expected 2 tab-separated fields"),
    ("sentence\tlabel\ngood\t1\t1\n", 2, "found 3"),
    ("sentence\tlabel\ngood\t1\n\nbad\t0\n", 3, "empty line"),
    ("sentence\tlabel\n  \t1\n", 2, "empty 'sentence'"),
])
def test_read_tsv_errors_name_file_and_line(tmp_path, content, line, fragment):
    path = _write(tmp_path, content)
    with pytest.raises(TextFormatError) as info:
        read_tsv(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.line == line and err.path == str(path)
    assert f"{path}:{line}:" in str(err) and fragment in str(err)


def test_read_tsv_invalid_utf8_line(tmp_path):
    path = tmp_path / "bin.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\n\xff\xfe\t0\n")
    with pytest.raises(TextFormatError, match=r":3: not valid UTF-8"):
        read_tsv(path)


@given(label=st.one_of(st.integers(min_value=2**63), st.integers(max_value=-2**63 - 1)),
       sign=st.sampled_from(["", "+"]))
def test_read_tsv_label_outside_int64_names_the_line(tmp_path_factory, label, sign):
    path = tmp_path_factory.mktemp("tsv") / "big.tsv"
    text = f"{sign}{label}" if label >= 0 else str(label)
    path.write_text(f"sentence\tlabel\nfine\t1\nhuge\t{text}\n")
    with pytest.raises(TextFormatError, match=r":3: label .* is out of the int64 range") as info:
        read_tsv(path)
    assert info.value.line == 3 and str(path) in str(info.value)


def test_read_tsv_accepts_the_int64_extremes(tmp_path):
    path = _write(tmp_path, f"sentence\tlabel\nlow\t{-2**63}\nhigh\t{2**63 - 1}\n")
    assert read_tsv(path)[1].tolist() == [-2**63, 2**63 - 1]


def test_encode_dataset_rejects_tokenless_sentence():
    vocab = Vocab.build([["a"]])
    with pytest.raises(ValueError, match="sentence 1 has no tokens"):
        encode_dataset(["a a", "?!"], vocab)
