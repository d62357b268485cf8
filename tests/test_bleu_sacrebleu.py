"""Our corpus BLEU against sacreBLEU's, on the recipes' own kind of outputs.

Tolerance: the two count the same integers (matches, totals, lengths), so they
can differ only in the floating-point steps after counting: sacreBLEU works in
percent (log(100 p_n)) and sums in its own order, a few ulps apart (~1e-16
relative each).  1e-12 relative is far above that and far below the smallest
real difference: one n-gram more or less in these corpora of hundreds moves
the score by more than 1e-4 relative.
"""

import math
import sys
import types

import pytest

from keras_rnn_lab.data import captions, sentence_pairs, shapes_world
from keras_rnn_lab.data.shapes_world import COLOURS, SIZES
from keras_rnn_lab.diagnostics import bleu
from recipes.parts import captioning_captioner, translation_report

try:
    import sacrebleu
except ImportError:  # optional: the `test` extra installs it
    sacrebleu = None
needs_sacrebleu = pytest.mark.skipif(sacrebleu is None, reason="the sacrebleu package is not installed")
TOLERANCE = dict(rel=1e-12, abs=1e-12)


def theirs(references, hypotheses, **settings):
    return sacrebleu.corpus_bleu(*bleu.sacrebleu_inputs(references, hypotheses), **settings)


def assert_same(references, hypotheses):
    """Score, precisions, brevity penalty and lengths agree under SACREBLEU_EQUIVALENT."""
    ours = bleu.corpus_bleu_details(references, hypotheses)
    score = theirs(references, hypotheses, **bleu.SACREBLEU_EQUIVALENT)
    assert (score.sys_len, score.ref_len) == (ours.hypothesis_length, ours.reference_length)
    assert score.bp == pytest.approx(ours.brevity_penalty, **TOLERANCE)
    assert score.precisions == pytest.approx([100 * p for p in ours.precisions], **TOLERANCE)
    assert score.score == pytest.approx(100 * ours.bleu, **TOLERANCE)
    return ours.bleu


def damaged(tokens, rng, vocabulary):
    """A translation with the mistakes a small model makes: a word dropped, two swapped, one wrong."""
    tokens = list(tokens)
    if len(tokens) > 1 and rng.random() < 0.4:
        del tokens[rng.integers(len(tokens))]
    if len(tokens) > 1 and rng.random() < 0.4:
        i = rng.integers(len(tokens) - 1)
        tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
    if tokens and rng.random() < 0.3:
        tokens[rng.integers(len(tokens))] = vocabulary[rng.integers(len(vocabulary))]
    return tokens


@pytest.fixture(scope="module")
def number_words():
    """The translation recipe's data: 300 unseen numbers, English -> French by num2words."""
    numbers = sentence_pairs.number_splits((10, 10, 300), "random", 1_000_000, seed=3)["test"]
    return sentence_pairs.number_pairs(numbers, "fr")[1]


@needs_sacrebleu
def test_translations_of_number_words_score_alike(number_words, rng):
    vocabulary = sorted({word for sentence in number_words for word in sentence})
    for share in (0.0, 0.3, 1.0):  # share of test sentences the "model" gets wrong
        hypotheses = [damaged(r, rng, vocabulary) if rng.random() < share else r for r in number_words]
        score = assert_same(number_words, hypotheses)
        assert (score == 1.0) == (share == 0.0)
    # Lengths that put the brevity penalty on, and sentences too short for 4-grams.
    assert assert_same(number_words, [r[: max(1, len(r) // 2)] for r in number_words]) < 0.5
    assert_same([r[:2] for r in number_words], [r[:2] for r in number_words])  # no 3- or 4-grams at all: 0 both


@needs_sacrebleu
def test_captions_with_several_references_score_alike(rng):
    """Captioning's case: one to three references per image (COCO has five), closest length, best clipping."""
    references, hypotheses = [], []
    for _ in range(200):
        size, colour, shape = (int(rng.integers(len(v))) for v in (SIZES, COLOURS, shapes_world.SHAPES))
        text = shapes_world.caption(size, colour, shape)
        refs = [text, text.replace(f"{SIZES[size]} ", ""), f"there is {text}"][: rng.integers(1, 4)]
        references.append([captions.tokenize(r) for r in refs])
        wrong = shapes_world.caption(size, (colour + 1) % len(COLOURS), shape)
        hypotheses.append(captions.tokenize(str(rng.choice([text, wrong, refs[-1], f"{text} {text}"]))))
    assert 0 < assert_same(references, hypotheses) < 1


@needs_sacrebleu
def test_the_hand_worked_cases_score_alike():
    assert_same(["the cat sat on a mat".split()], ["the cat sat on the mat".split()])  # 0.5373
    assert_same(["the cat is on the mat".split()], [["the"] * 7])  # clipping
    assert_same(["the cat sat on the mat".split()], [["the", "cat"]])  # brevity: no 3-grams, 0
    assert_same([[["the"], ["the", "cat", "sat"]]], [["the", "cat"]])  # a tie in length: the shorter
    assert_same([list("abcd"), list("ac")], [list("abcd"), list("ab")])  # pooled, not averaged
    assert_same([["a", "b", "c", "d", "e"]], [[]])  # an empty hypothesis


@needs_sacrebleu
def test_smoothing_differs_by_design():
    """No 4-gram right: 0 here (no smoothing), above 0 with sacreBLEU's default "exp"."""
    references, hypotheses = [["a", "b", "c", "d", "e"]], [["a", "b", "c", "x", "d", "e"]]
    details = bleu.corpus_bleu_details(references, hypotheses)
    assert details.precisions[3] == 0 and details.bleu == 0.0
    assert assert_same(references, hypotheses) == 0.0
    smoothed = theirs(references, hypotheses, **bleu.SACREBLEU_REPORTED)
    # "exp": the first order with no match gets 1 / (2 total_4) = 1 / 6 in place of 0 / 3.
    p = [5 / 6, 3 / 5, 1 / 4, 1 / (2 * 3)]
    assert smoothed.score == pytest.approx(100 * math.exp(sum(map(math.log, p)) / 4), **TOLERANCE)
    assert bleu.sacrebleu_score(references, hypotheses) == pytest.approx(smoothed.score, **TOLERANCE)


@needs_sacrebleu
def test_tokenization_and_case_differ_by_design(number_words):
    # Ours takes the tokens as given; sacreBLEU's 13a splits punctuation off ("mat." -> "mat .").
    references, hypotheses = [["the", "cat", "sat", "on", "the", "mat."]], [["the", "cat", "sat", "on", "the", "mat"]]
    assert bleu.corpus_bleu(references, hypotheses) < 1
    split = theirs(references, hypotheses, tokenize="13a", smooth_method="none")
    assert split.ref_len == 7 and split.score == pytest.approx(100 * math.exp(1 - 7 / 6), **TOLERANCE)  # all match, BP
    # Both keep case by default; sacreBLEU can fold it.
    cased, lower = ["The", "cat", "sat", "down"], ["the", "cat", "sat", "down"]
    assert theirs([cased], [lower], **{**bleu.SACREBLEU_EQUIVALENT, "lowercase": True}).score == pytest.approx(100)
    assert bleu.corpus_bleu_details([cased], [lower]).precisions == (3 / 4, 2 / 3, 1 / 2, 0.0)  # "The" != "the"
    # On the recipes' number words 13a changes nothing: hyphens between letters stay ("vingt-quatre").
    damaged_words = [r[:-1] + ["et"] if len(r) > 3 else r for r in number_words]
    reported = theirs(number_words, damaged_words, tokenize="13a", smooth_method="none", force=True).score
    assert reported == pytest.approx(100 * bleu.corpus_bleu(number_words, damaged_words), **TOLERANCE)


@needs_sacrebleu
def test_bleu_scores_give_both_and_the_note_says_which_is_which(number_words):
    hypotheses = [r[::-1] for r in number_words]
    scores = bleu.bleu_scores(number_words, hypotheses)
    assert scores["bleu"] == bleu.corpus_bleu(number_words, hypotheses)
    assert scores["sacrebleu"] == pytest.approx(theirs(number_words, hypotheses).score, **TOLERANCE)
    assert f"sacrebleu {sacrebleu.__version__}" in bleu.sacrebleu_note() and "tokenize=13a" in bleu.sacrebleu_note()


def translation_result(scores):
    """What translation's report reads of a TrainResult, with these scores."""
    config = types.SimpleNamespace(
        bidirectional=False, cell="lstm", builtin=False, units=8, attention=False, beam_width=2
    )
    pairs = {split: ([["one"]], [["un"]]) for split in sentence_pairs.SPLITS}
    data = types.SimpleNamespace(name="numbers", pairs=pairs)
    translations = {"greedy": [["un"]], "beam": [["un"]]}
    return types.SimpleNamespace(
        config=config,
        data=data,
        history={"loss": [1.0]},
        seconds=1.0,
        scores=scores,
        translations=translations,
        decode_seconds={"greedy": 0.1, "beam": 0.2},
    )


def test_without_sacrebleu_ours_is_reported_and_the_note_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "sacrebleu", None)  # `import sacrebleu` now raises ImportError
    assert bleu.bleu_scores([list("abcd")], [list("abcd")]) == {"bleu": 1.0, "sacrebleu": None}
    assert "sacrebleu is not installed: pip install sacrebleu" in bleu.sacrebleu_note()
    assert captioning_captioner.caption_scores([["a red circle"]], ["a red circle"])["sacrebleu"] is None
    scores = {method: {"exact_match": 1.0, "bleu": 1.0, "sacrebleu": None} for method in ("greedy", "beam")}
    report = translation_report.format_report(translation_result(scores)).splitlines()
    assert report[4].split() == ["greedy", "1.0000", "1.0000", "-", "0.1"]
    assert report[6] == bleu.sacrebleu_note()


@needs_sacrebleu
def test_the_translation_report_shows_both():
    scores = {method: {"exact_match": 0.5, "bleu": 0.25, "sacrebleu": 31.5} for method in ("greedy", "beam")}
    report = translation_report.format_report(translation_result(scores)).splitlines()
    assert report[3].split() == ["test", "exact", "match", "BLEU", "sacreBLEU", "seconds"]
    assert report[5].split() == ["beam", "(width", "2)", "0.5000", "0.2500", "31.50", "0.2"]
    assert report[6].startswith("BLEU: keras_rnn_lab's (0-1, no smoothing); sacreBLEU: sacrebleu ")


def test_sacrebleu_inputs_keep_every_reference():
    hypotheses, streams = bleu.sacrebleu_inputs([[["a", "b"], ["c"]], ["d", "e"]], [["a"], ["d"]])
    assert hypotheses == ["a", "d"]
    assert streams == [["a b", "d e"], ["c", None]]
    with pytest.raises(ValueError, match="same length; received 1 and 2"):
        bleu.sacrebleu_inputs([["a"]], [["a"], ["b"]])
