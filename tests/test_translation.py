"""The translation recipe: data sources, masking, decoding with the trained cells, learning, the command."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_rnn_lab.data import sentence_pairs
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.training import config_from_preset
from recipes import translation


def tiny_config(**overrides):
    return config_from_preset(translation.Config, translation.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset (bidirectional, with attention), shared by the tests that inspect it."""
    return translation.train(tiny_config(bidirectional=True, attention=True))


def untrained(**overrides):
    """A small untrained model on tiny number data (weights are random but fixed by the seed)."""
    config = tiny_config(**overrides)
    data = translation.load_data(config)
    keras.utils.set_random_seed(0)
    return config, data, translation.build_model(config, data)


# --- data ----------------------------------------------------------------------------------
def test_tokenize_keeps_compounds_and_splits_punctuation():
    assert translation.tokenize("Quatre-vingt-DIX, l'homme!") == ["quatre-vingt-dix", ",", "l'homme", "!"]


def test_number_pairs_are_num2words_grammar():
    sources, targets = sentence_pairs.number_pairs([71, 80, 200_071])
    assert targets == [
        ["soixante", "et", "onze"],
        ["quatre-vingts"],
        ["deux", "cent", "mille", "soixante", "et", "onze"],
    ]
    assert sources[2] == ["two", "hundred", "thousand", "and", "seventy-one"]


def test_number_splits_are_disjoint_and_the_extrapolate_split_is_harder():
    splits = sentence_pairs.number_splits((5_000, 500, 1_000))
    assert [len(splits[s]) for s in sentence_pairs.SPLITS] == [5_000, 500, 1_000]
    assert len(set(np.concatenate(list(splits.values())))) == 6_500  # no test number was trained on
    assert splits["test"].max() >= 100_000
    hard = sentence_pairs.number_splits((5_000, 500, 1_000), split="extrapolate")
    assert hard["train"].max() < 100_000 and hard["validation"].max() < 100_000
    assert hard["test"].min() >= 100_000 and len(set(hard["test"])) == 1_000
    with pytest.raises(ValueError, match="at most 100,000"):
        sentence_pairs.number_splits((100_000, 500, 1_000), split="extrapolate")


def test_load_data_builds_vocabularies_from_training_pairs_only():
    data = translation.load_data(tiny_config())
    assert [len(data.pairs[s][0]) for s in sentence_pairs.SPLITS] == [800, 100, 100]
    train_words = {w for sentence in data.pairs["train"][1] for w in sentence}
    assert set(data.target_vocabulary) == train_words
    assert data.target_vocabulary[0] == "cent"  # the most frequent French word below 1,000


def test_tsv_file_with_extra_columns(tmp_path):
    path = tmp_path / "fra.txt"
    lines = [f"Go {i}.\tVa {i} !\tCC-BY 2.0 (France) Attribution: tatoeba.org" for i in range(20)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    sources, targets = sentence_pairs.read_tsv(str(path))
    assert sources[3] == "Go 3." and targets[3] == "Va 3 !" and len(sources) == 20
    data = translation.load_data(tiny_config(tsv_path=str(path)))
    assert [len(data.pairs[s][0]) for s in sentence_pairs.SPLITS] == [16, 2, 2]
    everything = sorted(map(tuple, sum((data.pairs[s][0] for s in sentence_pairs.SPLITS), [])))
    assert everything == sorted((("go", str(i), ".") for i in range(20)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("Hi.\tSalut.\nno tab here\n", r"fra.txt, line 2: expected source<TAB>target"),
        ("Hi.\tSalut.\n\t Salut.\n", r"fra.txt, line 2: expected source<TAB>target"),
        ("\n\n", r"fra.txt: no sentence pairs found"),
    ],
)
def test_malformed_tsv_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "fra.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        sentence_pairs.read_tsv(str(path))


def test_missing_and_non_utf8_files_are_named(tmp_path):
    with pytest.raises(UsageError, match="argument --tsv or `tsv_path`: no such file .*nowhere.tsv"):
        sentence_pairs.read_tsv(str(tmp_path / "nowhere.tsv"))
    latin = tmp_path / "latin1.tsv"
    latin.write_bytes("caf\xe9\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1.tsv' is not UTF-8 text \(byte 0xe9 at offset 3\)"):
        sentence_pairs.read_tsv(str(latin))


# A few lines in the trans-de-en layout, written for this test (the real file is GPL: never shipped).
TRANS_FIXTURE = """\
# Version :: 1.0 test fixture
Haus {n}; Gebäude {n} | Häuser {pl} :: house; building | houses
Guten Morgen! :: Good morning!
Farbe {f} [Br.] :: colour [Br.]
"""


def test_trans_de_en_lines_pair_their_alternatives(tmp_path):
    path = tmp_path / "de-en"
    path.write_text(TRANS_FIXTURE, encoding="utf-8")
    german, english = sentence_pairs.read_trans(str(path))
    assert list(zip(german, english)) == [
        ("Haus", "house"),
        ("Häuser", "houses"),
        ("Guten Morgen!", "Good morning!"),
        ("Farbe", "colour"),
    ]


@pytest.mark.parametrize(
    "line, message",
    [("Haus | Häuser :: house\n", "line 2: expected 'de | de2 :: en | en2'"), ("Haus house\n", "line 2: expected")],
)
def test_malformed_trans_line_names_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "de-en"
    path.write_text("Tag {m} :: day\n" + line, encoding="utf-8")
    with pytest.raises(ValueError, match=f"de-en, {message}"):
        sentence_pairs.read_trans(str(path))


@pytest.mark.skipif(os.path.exists(sentence_pairs.TRANS_DE_EN), reason="trans-de-en is installed here")
def test_missing_trans_de_en_package_says_how_to_get_it(capsys):
    with pytest.raises(SystemExit):
        translation.main(["--preset", "tiny", "--trans-de-en"])
    assert "trans-de-en is not installed here" in capsys.readouterr().err


def test_tfds_translation_dataset_with_mock_data(tmp_path):
    config = tiny_config(tfds_name="ted_hrlr_translate/pt_to_en", data_dir=str(tmp_path), max_pairs=30)
    with tfds.testing.mock_data(num_examples=40):
        data = translation.load_data(config)
    assert [len(data.pairs[s][0]) for s in sentence_pairs.SPLITS] == [30, 30, 30]
    assert data.name == "ted_hrlr_translate/pt_to_en" and data.source_vocabulary and data.target_vocabulary


def test_tfds_that_is_not_prepared_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="could not load 'ted_hrlr_translate/pt_to_en' split 'train'"):
        sentence_pairs.read_tfds("ted_hrlr_translate/pt_to_en", str(tmp_path))


# --- model: masking, and decoding with the trained layers' own weights -----------------------------
def test_padding_is_masked_in_the_loss_and_accuracy():
    config, data, model = untrained()
    sources, targets = data.pairs["train"][0][:16], data.pairs["train"][1][:16]
    dataset = translation.teacher_forcing_dataset(model, sources, targets, batch_size=16)
    inputs, target_ids = next(iter(dataset))
    log_probs = tf.nn.log_softmax(model(inputs)).numpy()  # (batch, time, vocabulary)
    mask = target_ids.numpy() != 0
    assert 0 < mask.mean() < 1  # the batch has padding to ignore
    picked = np.take_along_axis(log_probs, target_ids.numpy()[..., None], axis=-1)[..., 0]
    expected_loss = -picked[mask].mean()
    expected_accuracy = (log_probs.argmax(-1) == target_ids.numpy())[mask].mean()
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    assert results["loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert results["accuracy"] == pytest.approx(expected_accuracy, rel=1e-4)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"cell": "gru"},
        {"cell": "simple_rnn", "bidirectional": True},
        {"bidirectional": True, "attention": True},
        {"cell": "gru", "attention": True, "builtin": True},
    ],
)
def test_stepping_the_decoder_cell_reproduces_the_teacher_forced_logits(overrides):
    config, data, model = untrained(**overrides)
    sources, targets = data.pairs["test"][0][:6], data.pairs["test"][1][:6]
    inputs, _ = next(iter(translation.teacher_forcing_dataset(model, sources, targets, batch_size=6)))
    translator = translation.Translator(model)
    logits = model(inputs).numpy()  # (batch, time, vocabulary)
    logits[..., [0, translator.start]] = -np.inf  # padding and [START] are never emitted
    expected = tf.nn.log_softmax(logits).numpy()
    states, constants = translator.encode(model.get_layer("source_lookup")(inputs["source"]))
    previous = model.get_layer("target_lookup")(inputs["target_in"])  # [START] + words: teacher forcing
    for t in range(previous.shape[1]):
        log_probs, states = translator.step(previous[:, t], states, constants)
        real = previous[:, t].numpy() != 0
        np.testing.assert_allclose(log_probs.numpy()[real], expected[real, t], atol=2e-4)


def test_padding_does_not_change_translations():
    config, data, model = untrained(attention=True, bidirectional=True)
    translator = translation.Translator(model)
    short = ["seven"]
    batch = [["nine", "hundred", "and", "ninety-nine"], short, ["one", "hundred", "and", "twelve"]]
    for width in (1, 3):
        alone = translator.translate_batch([short], beam_width=width, max_length=6)
        together = translator.translate_batch(batch, beam_width=width, max_length=6)
        assert together[1] == alone[0]
    states_alone, _ = translator.encode(model.get_layer("source_lookup")(tf.constant([short])))
    padded = tf.constant(translation.padded(batch).astype(str))
    states_padded, _ = translator.encode(model.get_layer("source_lookup")(padded))
    for a, p in zip(states_alone, states_padded):
        np.testing.assert_allclose(a.numpy()[0], p.numpy()[1], atol=1e-6)


def test_decoding_stops_at_the_end_token_within_the_maximum_length():
    config, data, model = untrained()
    translator = translation.Translator(model)
    tokens, lengths = translator.translate_ids(data.pairs["test"][0][:20], beam_width=3, max_length=5)
    assert tokens.shape == (20, 5)
    for row, length in zip(tokens.numpy(), lengths.numpy()):
        assert 1 <= length <= 5 and (row[length:] == 0).all()
        assert (row[: length - 1] != translator.end).all() and (row[:length] != 0).all()


def test_gradient_clipping_reaches_the_optimizer():
    assert untrained(clipnorm=1.5)[2].optimizer.clipnorm == 1.5
    assert untrained(clipvalue=0.25)[2].optimizer.clipvalue == 0.25


# --- learning, saving ----------------------------------------------------------------------------
@pytest.mark.slow  # the tiny_result fixture trains for about 30 s
def test_tiny_preset_learns(tiny_result):
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.3 * losses[0], losses
    assert tiny_result.history["val_accuracy"][-1] > 0.8
    greedy, beam = tiny_result.scores["greedy"], tiny_result.scores["beam"]
    assert greedy["exact_match"] > 0.5 and greedy["bleu"] > 0.6, tiny_result.scores
    assert beam["exact_match"] > 0.5, tiny_result.scores


@pytest.mark.slow  # the tiny_result fixture trains for about 30 s
def test_reported_scores_are_the_translations_own(tiny_result):
    references = tiny_result.data.pairs["test"][1]
    for method in ("greedy", "beam"):
        hypotheses = tiny_result.translations[method]
        exact = np.mean([r == h for r, h in zip(references, hypotheses)])
        assert tiny_result.scores[method]["exact_match"] == pytest.approx(exact)
    assert (
        "greedy mistakes" in translation.format_report(tiny_result) or tiny_result.scores["greedy"]["exact_match"] == 1
    )


@pytest.mark.slow  # the tiny_result fixture trains for about 30 s
def test_keras_round_trip_gives_the_same_outputs_and_translations(tiny_result, tmp_path):
    path = tmp_path / "translation.keras"
    tiny_result.model.save(path)
    reloaded = keras.saving.load_model(path)
    sources, targets = tiny_result.data.pairs["test"]
    inputs, _ = next(iter(translation.teacher_forcing_dataset(reloaded, sources, targets, batch_size=100)))
    np.testing.assert_allclose(reloaded(inputs).numpy(), tiny_result.model(inputs).numpy(), atol=1e-5)
    for width in (1, 3):
        again = translation.Translator(reloaded).translate_batch(sources, beam_width=width)
        assert again == tiny_result.translations["greedy" if width == 1 else "beam"]
    # One sentence as text: tokenized the same way.
    assert translation.Translator(reloaded)(" ".join(sources[0]).upper()) == tiny_result.translations["greedy"][0]


# --- the command ----------------------------------------------------------------------------------
def test_main_on_a_tsv_file_saves_and_reports(tmp_path, capsys):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"{w}\t{w.upper()}\n" for w in "red green blue cyan pink gray gold teal".split() * 5))
    out = tmp_path / "m.keras"
    result = translation.main(["--preset", "tiny", "--tsv", str(path), "--epochs", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "pairs.tsv: 32 train / 4 validation / 4 test pairs; lstm 64" in printed
    assert "beam (width 3)" in printed and len(result.history["loss"]) == 2 and out.exists()
    # The saved model translates on its own (its vocabularies are inside it).
    translated = translation.main(["translate", "--model", str(out), "--beam-width", "2", "red", "Teal"])
    assert translated == translation.Translator(result.model).translate_batch([["red"], ["teal"]], beam_width=2)
    assert capsys.readouterr().out.splitlines()[1].startswith("Teal\t")


def test_translate_without_a_model_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        translation.main(["translate", "--model", str(tmp_path / "none.keras"), "one"])
    assert exit_info.value.code == 2 and "no such file" in capsys.readouterr().err


def test_command_runs_on_a_mock_tfds_dataset(tmp_path, capsys):
    with tfds.testing.mock_data(num_examples=40):
        result = translation.main(
            ["--preset", "tiny", "--tfds", "ted_hrlr_translate/pt_to_en", "--data-dir", str(tmp_path), "--epochs", "1"]
        )
    assert len(result.history["loss"]) == 1 and "ted_hrlr_translate/pt_to_en" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bidirectional", "--units", "33"], "`units` must be even with `bidirectional`"),
        (["--split", "sideways"], "argument --split: invalid choice: 'sideways'"),
        (["--beam-width", "0"], "argument --beam-width: expected a positive int; received '0'"),
        (["--tsv", "a.tsv", "--tfds", "x"], "not allowed with argument"),
        (["--train-size", "2000"], "must be at most `number_range` (1,000)"),
    ],
)
def test_bad_arguments_stop_the_command_with_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        translation.main(["--preset", "tiny", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_malformed_file_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "bad.tsv"
    path.write_text("a\tb\nc d\n")
    with pytest.raises(SystemExit) as exit_info:
        translation.main(["--preset", "tiny", "--tsv", str(path)])
    assert exit_info.value.code == 2 and "bad.tsv, line 2: expected source<TAB>target" in capsys.readouterr().err
