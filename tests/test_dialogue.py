"""The dialogue recipe: the corpus, the split by prompt, the scores it reports, chat and export."""

import io
import json
import math
import random
import re
import sys

import numpy as np
import pytest

from keras_rnn_lab import cli
from keras_rnn_lab.data import dialogues, sentence_pairs
from keras_rnn_lab.data.sentence_pairs import SPLITS
from keras_rnn_lab.diagnostics.bleu import corpus_bleu
from keras_rnn_lab.diagnostics.perplexity import unigram_perplexity
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.training import config_from_preset
from recipes import dialogue, translation
from recipes.parts import dialogue_report
from recipes.parts.translation_translator import SERVED_MAX_LENGTH, Translator
from tests.serving import Job, RuntimeJob, run_in_runtime, serve_many

PROMPTS = ["Hello", "What is AI?", "tell me a joke", "words never seen anywhere"]


def tiny_config(settings=None, **overrides):
    return config_from_preset(dialogue.Config, dialogue.PRESETS, "tiny", settings, **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return dialogue.train(tiny_config())


@pytest.fixture(scope="module")
def saved_model(tiny_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("dialogue") / "chat.keras"
    dialogue.RECIPE.save_model(tiny_result.model, path)
    return path


def replies_of(model, texts, beam_width):
    """What the recipe's Translator answers, at the served maximum length."""
    return Translator(model, max_length=SERVED_MAX_LENGTH).translate_batch(
        [sentence_pairs.tokenize(t) for t in texts], beam_width
    )


# --- the corpus ---------------------------------------------------------------------------------
def test_the_corpus_reads_offline_as_prompt_reply_pairs():
    pairs, skipped = dialogues.read_chatterbot(topics=["greetings"])
    assert skipped == 0 and pairs[0] == dialogues.DialoguePair("Hello", "Hi", "greetings")  # greetings.yml's first
    assert ("Hi, How is it going?", "Could be better.") in [(p.prompt, p.reply) for p in pairs]


def test_a_conversation_of_n_turns_gives_n_minus_1_pairs():
    pairs, _ = dialogues.read_chatterbot(topics=["conversations"])
    turns = [
        "Good morning, how are you?",
        "I am doing well, how about you?",
        "I'm also good.",
        "That's good to hear.",
        "Yes it is.",
    ]  # conversations.yml's first conversation
    assert [(p.prompt, p.reply) for p in pairs[:4]] == list(zip(turns, turns[1:]))
    assert (pairs[4].prompt, pairs[4].reply) == ("Hello", "Hi")  # the next conversation starts afresh


def test_every_english_topic_and_the_one_malformed_conversation():
    assert len(dialogues.available_topics()) == 21 and {"greetings", "trivia"} <= set(dialogues.available_topics())
    pairs, skipped = dialogues.read_chatterbot()
    assert skipped == 1 and 2_000 < len(pairs) < 3_000  # trivia.yml's question merged with its answer


def test_a_missing_corpus_or_yaml_says_what_to_install(monkeypatch):
    with pytest.raises(ValueError, match=r"Argument `topics` must name some of \['ai'"):
        dialogues.read_chatterbot(topics=["weather"])
    with pytest.raises(ValueError, match="Argument `corpus_language` must be one of"):
        dialogues.read_chatterbot("klingon")
    monkeypatch.setitem(sys.modules, "yaml", None)  # importing it now fails
    with pytest.raises(UsageError, match="needs PyYAML .*pip install chatterbot-corpus==1.3.3 pyyaml"):
        dialogues.read_chatterbot()
    monkeypatch.setitem(sys.modules, "chatterbot_corpus", None)
    with pytest.raises(UsageError, match="the dialogue corpus is not installed .*pip install chatterbot-corpus"):
        dialogues.available_topics()


def test_an_unknown_topic_or_a_file_source_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        dialogue.main(["--preset", "tiny", "--topics", "greetings,weather"])
    assert exit_info.value.code == 2 and "Argument `topics` must name some of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Argument `tsv_path` is translation's"):
        tiny_config(tsv_path="pairs.tsv")


# --- the split --------------------------------------------------------------------------------
def test_no_test_prompt_is_ever_a_training_prompt():
    for config in (tiny_config(), tiny_config({"max_pairs": None})):  # 240 pairs, then all of them
        data = dialogue.load_data(config)
        prompts = {split: {tuple(p) for p in data.pairs[split][0]} for split in SPLITS}
        assert not prompts["test"] & (prompts["train"] | prompts["validation"])
        assert not prompts["validation"] & prompts["train"]
    _, references = dialogue_report.by_prompt(*data.pairs["test"])
    assert max(map(len, references)) > 1  # some test prompts have several right replies
    sizes = [len(data.pairs[split][0]) for split in SPLITS]
    assert 1_000 < sum(sizes) < 1_300 and 0.13 < sizes[2] / sum(sizes) < 0.2, sizes


def test_grouped_splits_keep_a_group_in_one_split_and_plain_splits_are_as_before():
    sources, targets = list(range(100)), [f"t{i}" for i in range(100)]
    order = list(range(100))
    random.Random(3).shuffle(order)
    plain = sentence_pairs.shuffled_splits(sources, targets, seed=3)
    assert (plain["test"][0], plain["validation"][0], plain["train"][0]) == (order[:10], order[10:20], order[20:])
    groups = [i // 7 for i in range(100)]  # 15 groups, the last of 2
    grouped = sentence_pairs.shuffled_splits(sources, targets, seed=3, groups=groups)
    keys = {split: {groups[i] for i in grouped[split][0]} for split in SPLITS}
    assert not keys["test"] & keys["train"] and not keys["validation"] & (keys["train"] | keys["test"])
    assert sorted(sum((grouped[split][0] for split in SPLITS), [])) == sources
    assert len(grouped["test"][0]) >= 10 and len(grouped["validation"][0]) >= 1


# --- the scores ---------------------------------------------------------------------------------
def test_unigram_perplexity_by_hand():
    # Add-one counts over ids 1..3 (0 is padding): 1 + 0, 1 + 2, 1 + 1 = 1, 3, 2 of 6.
    result = unigram_perplexity([[2, 3, 0], [2]], [[2, 3, 0, 0]], vocabulary_size=4)
    assert result.tokens == 2 and result.perplexity == pytest.approx(math.sqrt(6))  # exp(-(ln 3/6 + ln 2/6) / 2)


@pytest.mark.slow  # trains the tiny preset once (module fixture, ~15 s): kept out of the default run
def test_the_perplexity_is_exp_of_kerass_masked_loss(tiny_result):
    data, model = tiny_result.data, tiny_result.model
    everything = translation.teacher_forcing_dataset(model, *data.pairs["test"], batch_size=10_000)  # one batch
    loss = model.evaluate(everything, verbose=0, return_dict=True)["loss"]
    assert tiny_result.perplexity.perplexity == pytest.approx(math.exp(loss), rel=1e-4)
    assert tiny_result.perplexity.tokens == sum(len(reply) + 1 for reply in data.pairs["test"][1])  # + [END]
    assert 0 <= tiny_result.unknown < 1 and tiny_result.unigram.tokens == tiny_result.perplexity.tokens


@pytest.mark.slow  # trains the tiny preset once (module fixture, ~15 s): kept out of the default run
def test_the_tiny_preset_learns_and_reports_three_rows_of_finite_numbers(tiny_result):
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    report = dialogue_report.format_report(tiny_result)
    for label in ("model greedy", "model beam (width 2)", "retrieval baseline"):
        [row] = [line for line in report.splitlines() if line.startswith(label)]
        numbers = [float(x) for x in re.findall(r"\d+\.\d+", row[len(label) :])]
        assert len(numbers) >= 4 and all(math.isfinite(x) for x in numbers), row
    for method in ("greedy", "beam", "retrieval"):  # multi-reference: every test reply of the prompt
        expected = corpus_bleu(tiny_result.references, tiny_result.replies[method])
        assert tiny_result.scores[method]["bleu"] == pytest.approx(expected)
    assert "the first 6 test prompts:" in report and report.count("    retrieval ") == 6


@pytest.mark.slow  # trains the tiny preset once (module fixture, ~15 s): kept out of the default run
def test_retrieval_answers_a_training_prompt_with_its_own_reply(tiny_result):
    prompts, references = dialogue_report.by_prompt(*tiny_result.data.pairs["train"])
    retrieval = dialogue_report.Retrieval(*tiny_result.data.pairs["train"])
    nearest = retrieval.nearest(prompts)
    # Cosine 1 needs the same words: only another prompt of the same words can tie with its own.
    assert all(set(retrieval.prompts[j]) == set(p) for j, p in zip(nearest, prompts))
    hits = np.mean([reply == refs[0] for reply, refs in zip(retrieval(prompts), references)])
    assert hits > 0.95, hits


def test_retrieval_bleu_matches_a_hand_checked_case():
    retrieval = dialogue_report.Retrieval(
        [["how", "are", "you"], ["what", "is", "ai"]],
        [["i", "am", "fine", "thank", "you"], ["ai", "is", "artificial", "intelligence"]],
    )
    replies = retrieval([["how", "are", "you", "today"], ["what", "is", "ml"]])
    assert replies == [["i", "am", "fine", "thank", "you"], ["ai", "is", "artificial", "intelligence"]]
    references = [[["i", "am", "fine", "thank", "you"], ["good"]], [["ml", "is", "machine", "learning"]]]
    scores = translation.scores(references, replies)
    # 1- to 4-grams right: 6 of 9, 4 of 7, 3 of 5, 2 of 3; 9 words against references of 5 + 4: no penalty.
    assert scores["bleu"] == pytest.approx((6 / 9 * 4 / 7 * 3 / 5 * 2 / 3) ** 0.25)
    assert scores["exact_match"] == 0.5  # the first reply is one of its references


# --- chat ------------------------------------------------------------------------------------------
@pytest.mark.slow  # trains the tiny preset once (module fixture, ~15 s): kept out of the default run
def test_chat_prints_one_reply_per_piped_line_until_an_empty_line(saved_model, tiny_result, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\nwhat is ai\n\nnever read\n"))
    replies = dialogue.main(["chat", "--model", str(saved_model), "--beam-width", "2"])
    expected = replies_of(tiny_result.model, ["Hello", "what is ai"], 2)
    assert replies == expected
    assert capsys.readouterr().out.splitlines() == [dialogue_report.detokenize(r) for r in expected]


class Interrupted(io.StringIO):
    """stdin whose reader presses Ctrl-C after the first line."""

    def readline(self, *args):
        if self.tell():
            raise KeyboardInterrupt
        return super().readline(*args)


@pytest.mark.slow  # trains the tiny preset once (module fixture, ~15 s): kept out of the default run
def test_chat_ends_at_end_of_input_and_on_ctrl_c(saved_model, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello"))  # no final newline
    assert len(cli.main(["chat", "--model", str(saved_model), "--beam-width", "1"])) == 1  # keras-rnn-lab chat
    monkeypatch.setattr(sys, "stdin", Interrupted("hello\nhi\n"))
    assert len(dialogue.main(["chat", "--model", str(saved_model)])) == 1
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_chat_with_a_missing_model_exits_2_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        dialogue.main(["chat", "--model", str(tmp_path / "none.keras")])
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith(("usage:", " "))]
    assert exit_info.value.code == 2 and len(lines) == 1 and "argument --model: no such file" in lines[0]


def test_detokenize_attaches_closing_punctuation():
    assert dialogue_report.detokenize(["hi", ",", "how", "are", "you", "?"]) == "hi, how are you?"


# --- export: translation's endpoints serve a dialogue model ---------------------------------------
@pytest.mark.slow  # ~15 s: the export traces both searches, then a fresh TensorFlow process serves them
def test_the_savedmodel_export_serves_the_translators_replies(saved_model, tiny_result, tmp_path):
    path = dialogue.main(["export", "--model", str(saved_model), "--out", str(tmp_path / "export")])
    texts = np.array(PROMPTS)
    greedy, beam = serve_many([Job(path, "translate", {"text": texts}), Job(path, "translate_beam", {"text": texts})])
    for served, width in ((greedy, 1), (beam, 4)):
        expected = [" ".join(words) for words in replies_of(tiny_result.model, PROMPTS, width)]
        assert list(served[0]["translation"]) == expected


@pytest.mark.slow  # ~10 s of conversion
def test_the_tflite_export_gives_the_translators_token_ids(saved_model, tiny_result, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="ai_edge_litert is not installed (the test extra installs it)")
    out = tmp_path / "tflite"
    dialogue.main(["export", "--model", str(saved_model), "--out", str(out), "--format", "tflite"])
    settings = json.loads((out / "tokenizer.json").read_text())
    index = {word: i for i, word in enumerate(json.loads((out / "source_vocabulary.json").read_text()))}
    rows = [
        [index.get(w, settings["oov_id"]) for w in re.findall(settings["token_pattern"], t.lower())] for t in PROMPTS
    ]
    ids = np.array([row + [0] * (max(map(len, rows)) - len(row)) for row in rows], np.int64)
    jobs = [
        RuntimeJob(str(out / "model.tflite"), name, {"source_ids": ids})
        for name in ("translate_ids", "translate_beam_ids")
    ]
    translator = Translator(tiny_result.model, max_length=SERVED_MAX_LENGTH)
    for got, width in zip(run_in_runtime("tflite", jobs), (1, 4)):
        tokens, lengths = translator.translate_ids([sentence_pairs.tokenize(t) for t in PROMPTS], width)
        np.testing.assert_array_equal(got["tokens"], tokens.numpy())
        np.testing.assert_array_equal(got["lengths"], lengths.numpy())


@pytest.mark.slow  # ~15 s of conversion
def test_the_onnx_export_of_a_model_with_dropout(tmp_path):
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed (the test extra installs it)")
    config = tiny_config({"dropout": 0.3})  # the default preset's dropout
    path = dialogue.RECIPE.save_model(dialogue.build_model(config, dialogue.load_data(config)), tmp_path / "d.keras")
    dialogue.main(["export", "--model", str(path), "--out", str(tmp_path / "onnx"), "--format", "onnx"])
    assert (tmp_path / "onnx" / "translate_ids.onnx").exists()
