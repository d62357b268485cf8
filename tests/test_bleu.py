"""Corpus BLEU against values worked out by hand."""

import math

import pytest

from keras_rnn_lab.diagnostics.bleu import corpus_bleu, corpus_bleu_details


def test_perfect_and_disjoint():
    sentences = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "barked", "twice"]]
    assert corpus_bleu(sentences, sentences) == 1.0
    assert corpus_bleu(sentences, [["x", "y", "z", "w", "v"], ["q", "r", "s", "t"]]) == 0.0


def test_one_sentence_by_hand():
    reference = "the cat sat on a mat".split()
    hypothesis = "the cat sat on the mat".split()
    details = corpus_bleu_details([reference], [hypothesis])
    # 1-grams: "the" twice but once in the reference (clipped) -> 5/6; 2-grams 3/5
    # (the cat, cat sat, sat on); 3-grams 2/4; 4-grams 1/3 (the cat sat on); c = r = 6.
    assert details.precisions == pytest.approx((5 / 6, 3 / 5, 2 / 4, 1 / 3))
    assert details.brevity_penalty == 1.0
    assert details.bleu == pytest.approx((5 / 6 * 3 / 5 * 1 / 2 * 1 / 3) ** 0.25)  # 0.5373
    assert details.bleu == pytest.approx(0.537284965911771)


def test_clipping_of_a_repeated_word():
    # Papineni et al.'s example: seven "the" against a reference with two.
    reference = "the cat is on the mat".split()
    details = corpus_bleu_details([reference], [["the"] * 7], max_order=1)
    assert details.precisions == (2 / 7,)
    assert details.bleu == pytest.approx(2 / 7)


def test_brevity_penalty():
    details = corpus_bleu_details(["the cat sat on the mat".split()], [["the", "cat"]], max_order=2)
    assert details.precisions == (1.0, 1.0)
    assert (details.hypothesis_length, details.reference_length) == (2, 6)
    assert details.brevity_penalty == pytest.approx(math.exp(1 - 6 / 2))
    assert details.bleu == pytest.approx(math.exp(-2))


def test_precisions_and_lengths_are_pooled_over_the_corpus():
    references = [list("abcd"), list("ac")]
    hypotheses = [list("abcd"), list("ab")]
    # 1-grams (4 + 1) / (4 + 2), 2-grams (3 + 0) / (3 + 1); the average of the
    # sentence scores would be (1 + 0) / 2 instead.
    assert corpus_bleu(references, hypotheses, max_order=2) == pytest.approx(math.sqrt(5 / 6 * 3 / 4))


def test_several_references_clip_to_the_most_generous_and_pick_the_closest_length():
    hypothesis = ["the", "cat"]
    references = [["the"], ["the", "cat", "sat"]]
    details = corpus_bleu_details([references], [hypothesis], max_order=1)
    # "cat" is found in the second reference; lengths 1 and 3 are equally close
    # to 2: the shorter counts, so no brevity penalty (it would be exp(-1/2) with 3).
    assert details.precisions == (1.0,)
    assert details.reference_length == 1 and details.brevity_penalty == 1.0
    assert details.bleu == 1.0


def test_a_missing_order_gives_zero_without_smoothing():
    # Every 1-gram matches but no 2-gram does.
    assert corpus_bleu([["a", "b", "c"]], [["c", "b", "a"]], max_order=2) == 0.0
    assert corpus_bleu([["a", "b", "c"]], [["c", "b", "a"]], max_order=1) == 1.0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="same length; received 1 and 2"):
        corpus_bleu([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="`hypotheses` is empty"):
        corpus_bleu([], [])
    with pytest.raises(TypeError, match=r"`hypotheses`: entry 0 must be a list of tokens .*received str"):
        corpus_bleu([["a"]], ["a b"])
    with pytest.raises(TypeError, match="`max_order` must be a positive int"):
        corpus_bleu([["a"]], [["a"]], max_order=2.5)
