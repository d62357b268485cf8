"""The captioning recipe: words, data files, the model, decoding by hand, scores, the command."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import decoding
from keras_rnn_lab.data import captions as caption_data
from keras_rnn_lab.data import shapes_world
from keras_rnn_lab.training import config_from_preset
from recipes import captioning
from recipes.parts import captioning_captioner, captioning_layers
from tests.serving import Job, serve_many


def tiny_config(**overrides):
    return config_from_preset(captioning.Config, captioning.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return captioning.train(tiny_config())


@pytest.fixture(scope="module")
def captioner(tiny_result):
    return captioning.Captioner(tiny_result.model)


def write_png(path, pixels):
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(pixels, dtype="uint8")))


def write_coloured_pictures(folder, count):
    """`count` plain 12x12 PNGs in `folder`, alternately blue and red, and
    captions.txt naming each "a blue picture" or "a red picture"."""
    lines = []
    for i in range(count):
        colour = ("red", (220, 20, 20)) if i % 2 else ("blue", (20, 20, 220))
        write_png(folder / f"{i}.png", np.broadcast_to(colour[1], (12, 12, 3)))
        lines.append(f"{i}.png\ta {colour[0]} picture")
    (folder / "captions.txt").write_text("\n".join(lines), encoding="utf-8")


# --- words ---------------------------------------------------------------------------------
def test_vocabulary_encodes_with_start_end_and_padding_and_decodes_back():
    vocabulary = captioning.Vocabulary.shapes()
    assert vocabulary.words[:4] == caption_data.SPECIAL_TOKENS and len(vocabulary) == 4 + len(shapes_world.WORDS)
    tokens = vocabulary.encode(["a small red circle", "A large blue square above a small red circle."], max_words=10)
    index = {word: i for i, word in enumerate(vocabulary.words)}
    expected = [caption_data.START] + [index[w] for w in "a small red circle".split()] + [caption_data.END]
    np.testing.assert_array_equal(tokens[0], expected + [caption_data.PAD] * 6)
    assert tokens.shape == (2, 12) and tokens.dtype == np.int32
    assert vocabulary.decode(tokens[1][1:]) == "a large blue square above a small red circle"
    # Too long: cut to max_words, the end token kept; unknown words become <unk>.
    cut = vocabulary.encode(["a small pink circle left of"], max_words=4)[0]
    np.testing.assert_array_equal(
        cut, [caption_data.START, index["a"], index["small"], caption_data.UNK, index["circle"], caption_data.END]
    )


def test_vocabulary_from_captions_keeps_frequent_words_most_frequent_first():
    vocabulary = captioning.Vocabulary.from_captions(["A dog runs.", "a dog sits", "a cat"], min_count=2)
    assert vocabulary.words == caption_data.SPECIAL_TOKENS + ("a", "dog")
    assert captioning.tokenize("The dog's ball, 2 times!") == ["the", "dog's", "ball", "2", "times"]


# --- data ------------------------------------------------------------------------------------
def test_shapes_data_holds_the_pairs_out_of_training_and_into_the_held_out_split():
    config = tiny_config(two_object_fraction=0.75)
    data = captioning.load_data(config)
    held_out = set(config.held_out_pairs)
    assert set(data.splits) == set(captioning.SPLITS)
    for split in ("train", "validation", "test"):
        pairs = data.splits[split].scenes.pairs()
        assert not any(p in held_out for scene in pairs for p in scene if p), split
    assert all(any(p in held_out for p in scene if p) for scene in data.splits["held_out"].scenes.pairs())
    assert [len(data.splits[s]) for s in captioning.SPLITS] == [1_500, 100, 100, 100]
    # Seeded: the same config gives the same scenes.
    again = captioning.load_data(config)
    np.testing.assert_array_equal(again.splits["test"].images, data.splits["test"].images)


def test_teacher_forcing_shifts_the_caption_and_weighs_only_real_words():
    data = captioning.load_data(tiny_config())
    inputs, targets, weights = captioning.teacher_forcing(data.splits["test"], data.vocabulary, data.max_words)
    np.testing.assert_array_equal(inputs["words"][:, 1:], targets[:, :-1])
    assert np.all(inputs["words"][:, 0] == caption_data.START)
    lengths = np.array([len(refs[0].split()) for refs in data.splits["test"].references])
    np.testing.assert_array_equal(weights.sum(axis=1), lengths + 1)  # the words and <end>
    np.testing.assert_array_equal(targets[np.arange(len(targets)), lengths], caption_data.END)


def test_caption_file_formats(tmp_path):
    tab = tmp_path / "tokens.txt"
    tab.write_text("a.png#0\tA dog runs.\na.png#1\tA brown dog\n\nb.png\tTwo cats\n", encoding="utf-8")
    assert caption_data.read_caption_file(tab) == {"a.png": ["A dog runs.", "A brown dog"], "b.png": ["Two cats"]}
    flickr = tmp_path / "captions.txt"
    flickr.write_text('image,caption\na.png,"A dog, running"\nb.png,Two cats, sleeping\n', encoding="utf-8")
    assert caption_data.read_caption_file(flickr) == {"a.png": ["A dog, running"], "b.png": ["Two cats, sleeping"]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("a.png\tA dog\nb.png A cat\n", "line 2 of .* must be `image<TAB>caption`"),
        ("a.png\t   \n", "line 1 of .* must be `image<TAB>caption`"),
        ("a.png\t...\n", "line 1 of .* has a caption without words"),
        ("\n\n", "holds no captions"),
        ("image,caption\na.png\n", "line 2 of .* must be"),
    ],
)
def test_malformed_caption_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "captions.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        caption_data.read_caption_file(path)


def test_image_folder_loads_resizes_and_reports_missing_or_broken_images(tmp_path):
    pixels = np.zeros((20, 30, 3), "uint8")
    pixels[:, :15] = (200, 10, 10)  # left half red
    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / name, pixels)
    captions = tmp_path / "captions.txt"
    captions.write_text("a.png\tred left\nb.png\tred left\nc.png\tred left\nc.png\tleft red\n", encoding="utf-8")
    images, references, names = caption_data.load_image_folder(tmp_path, captions, image_size=16)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8 and names == ["a.png", "b.png", "c.png"]
    assert references[2] == ["red left", "left red"]
    np.testing.assert_allclose(images[0, :, :7], np.broadcast_to([200, 10, 10], (16, 7, 3)), atol=1)
    np.testing.assert_array_equal(images[0, :, 9:], 0)

    captions.write_text("a.png\tred\nmissing.png\tgone\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"names 1 image\(s\) not found in .*\['missing.png'\]"):
        caption_data.load_image_folder(tmp_path, captions)
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    captions.write_text("broken.png\ta picture\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.png' could not be decoded"):
        caption_data.load_image_folder(tmp_path, captions)
    with pytest.raises(ValueError, match="no directory"):
        caption_data.load_image_folder(tmp_path / "nowhere", captions)
    with pytest.raises(ValueError, match="`captions_file`: no such file"):
        caption_data.load_image_folder(tmp_path, tmp_path / "nothing.txt")


@pytest.mark.slow
def test_users_images_train_end_to_end_and_split_by_image(tmp_path):
    # Red images are captioned "a red picture", blue ones "a blue picture".
    write_coloured_pictures(tmp_path, 40)
    config = tiny_config(
        images_dir=str(tmp_path),
        captions_file=str(tmp_path / "captions.txt"),
        image_size=16,
        epochs=25,
        batch_size=8,
        patience=25,
    )
    data = captioning.load_data(config)
    names = [set(data.splits[s].names) for s in ("train", "validation", "test")]
    assert sum(len(n) for n in names) == 40 and not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert data.vocabulary.words[4:6] == ("a", "picture") and set(data.vocabulary.words[6:]) == {"blue", "red"}
    result = captioning.train(config, data)
    assert result.scores["test"]["greedy"]["exact"] == 1.0, result.predictions
    assert "held_out" not in result.scores


@pytest.mark.slow
def test_a_model_trained_on_your_captions_exports_and_serves_in_its_own_words(tmp_path):
    """The .keras file holds its vocabulary, so `export` needs nothing but the model."""
    write_coloured_pictures(tmp_path, 12)
    config = tiny_config(
        images_dir=str(tmp_path), captions_file=str(tmp_path / "captions.txt"), image_size=16, epochs=8, batch_size=4
    )
    data = captioning.load_data(config)
    assert len(data.vocabulary) != len(captioning.Vocabulary.shapes())  # not the shapes world's words
    model = captioning.train(config, data).model
    model.save(tmp_path / "mine.keras")
    reloaded = keras.saving.load_model(tmp_path / "mine.keras")
    assert captioning.Captioner(reloaded).vocabulary == data.vocabulary
    path = captioning.main(["export", "--model", str(tmp_path / "mine.keras"), "--out", str(tmp_path / "export")])
    images = np.concatenate([data.splits[split].images for split in ("train", "test")])
    served = serve_many([Job(path, "caption", {"image": images}), Job(path, "caption_beam", {"image": images})])
    for outputs, width in zip(served, (1, 3)):
        tokens, _ = captioning.Captioner(model)(images, captioning.SERVED_MAX_WORDS, beam_width=width)
        expected = [data.vocabulary.decode(row) for row in tokens]
        assert list(outputs[0]["caption"]) == expected
        assert set(" ".join(expected).split()) <= set(data.vocabulary.words[4:]) and any(expected)


def test_tfds_coco_captions_through_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        images, references, names = caption_data.load_tfds_captions("coco_captions", image_size=16, max_images=6)
    assert images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
    assert all(isinstance(text, str) for refs in references for text in refs) and len(names) == 6
    assert all(isinstance(name, str) and not name.startswith("b'") for name in names)
    with pytest.raises(ValueError, match="could not load 'no_such_set'"):
        caption_data.load_tfds_captions("no_such_set")


# --- the model and decoding --------------------------------------------------------------------
@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_tiny_preset_learns(tiny_result):
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    scores = tiny_result.scores["test"]
    # One-object scenes: 36 captions, so guessing gets about 3% exact.
    assert scores["greedy"]["exact"] >= 0.8 and scores["greedy"]["bleu"] >= 0.8, scores
    predictions = tiny_result.predictions["test"]["greedy"]
    expected = captioning_captioner.caption_scores(tiny_result.data.splits["test"].references, predictions)
    assert expected == scores["greedy"]


def reference_greedy(model, images, max_length):
    """Greedy decoding the slow way: rerun the whole model on the words so far, take the last argmax."""
    words = np.full((len(images), 1), caption_data.START, "int32")
    for _ in range(max_length):
        logits = model.predict({"image": images, "words": words}, verbose=0)  # (n, t, vocab)
        words = np.concatenate([words, np.argmax(logits[:, -1], axis=-1)[:, None].astype("int32")], axis=1)
    tokens = words[:, 1:]
    ended = np.cumsum(tokens == caption_data.END, axis=1)
    after_end = (ended - (tokens == caption_data.END)) > 0
    return np.where(after_end, caption_data.PAD, tokens)


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_stepping_the_cell_by_hand_matches_the_trained_layer(tiny_result, captioner):
    images = tiny_result.data.splits["test"].images[:12]
    tokens, lengths = captioner(images, max_length=7)
    np.testing.assert_array_equal(tokens, reference_greedy(tiny_result.model, images, 7))
    # Lengths count the words up to and including <end>.
    for row, length in zip(tokens, lengths):
        ends = np.flatnonzero(row == caption_data.END)
        assert length == (ends[0] + 1 if len(ends) else 7)


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_decoding_stops_at_the_end_token_and_respects_the_maximum_length(tiny_result, captioner):
    images = tiny_result.data.splits["test"].images[:20]
    tokens, lengths = captioner(images, max_length=12)
    assert tokens.shape == (20, 12) and np.all(lengths <= 12)
    for row, length in zip(tokens, lengths):
        assert row[length - 1] == caption_data.END  # the tiny model ends every caption well before 12
        assert np.all(row[length:] == caption_data.PAD)
    for width in (1, 3):
        short, short_lengths = captioner(images, max_length=2, beam_width=width)
        assert short.shape == (20, 2) and np.all(short_lengths == 2) and not np.any(short == caption_data.END)


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_beam_width_one_is_greedy_and_wider_beams_are_at_least_as_likely(tiny_result, captioner):
    images = tiny_result.data.splits["held_out"].images[:30]
    greedy, _ = captioner(images, max_length=11)
    beam_one, _ = captioner(images, max_length=11, beam_width=1)
    np.testing.assert_array_equal(beam_one, greedy)
    states, constants = captioner.encode(images)
    _, _, greedy_scores = decoding.beam_search(
        captioner.step, states, caption_data.START, caption_data.END, 11, 1, constants
    )
    _, _, beam_scores = decoding.beam_search(
        captioner.step, states, caption_data.START, caption_data.END, 11, 4, constants
    )
    # Not guaranteed caption by caption (the greedy path can fall out of the beam), but on average.
    assert np.mean(beam_scores.numpy()) >= np.mean(greedy_scores.numpy()) - 1e-5


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_padding_and_batching_do_not_change_results(tiny_result, captioner):
    model, data = tiny_result.model, tiny_result.data
    inputs, targets, weights = captioning.teacher_forcing(data.splits["test"], data.vocabulary, data.max_words)
    inputs = {"image": inputs["image"][:16], "words": inputs["words"][:16]}
    padded = {"image": inputs["image"], "words": np.pad(inputs["words"], [(0, 0), (0, 5)])}
    short_logits = model.predict(inputs, verbose=0)
    long_logits = model.predict(padded, verbose=0)
    np.testing.assert_allclose(long_logits[:, : short_logits.shape[1]], short_logits, atol=1e-5)
    # The loss is a mean over real words: extra padding (weight 0) leaves it as it was.
    loss = model.evaluate(inputs, targets[:16], sample_weight=weights[:16], verbose=0, return_dict=True)["loss"]
    more = model.evaluate(
        padded,
        np.pad(targets[:16], [(0, 0), (0, 5)]),
        sample_weight=np.pad(weights[:16], [(0, 0), (0, 5)]),
        verbose=0,
        return_dict=True,
    )["loss"]
    assert more == pytest.approx(loss, rel=1e-5)
    # An image's caption does not depend on the others decoded beside it.
    images = data.splits["test"].images[:20]
    together, _ = captioner(images, max_length=11, beam_width=3)
    alone, _ = captioner(images[:3], max_length=11, beam_width=3, batch_size=1)
    np.testing.assert_array_equal(alone, together[:3])


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_keras_round_trip_gives_the_same_logits_and_captions(tiny_result, captioner, tmp_path):
    path = tmp_path / "captioning.keras"
    tiny_result.model.save(path)
    reloaded = keras.saving.load_model(path)
    data = tiny_result.data
    inputs, _, _ = captioning.teacher_forcing(data.splits["test"], data.vocabulary, data.max_words)
    inputs = {name: value[:10] for name, value in inputs.items()}
    np.testing.assert_allclose(
        reloaded.predict(inputs, verbose=0), tiny_result.model.predict(inputs, verbose=0), atol=1e-5
    )
    images = data.splits["test"].images[:10]
    np.testing.assert_array_equal(
        captioning.Captioner(reloaded)(images, 11, beam_width=2)[0], captioner(images, 11, beam_width=2)[0]
    )


@pytest.mark.parametrize("cell, attention, colour_blind", [("gru", False, True), ("simple_rnn", True, False)])
def test_other_cells_and_encoders_decode_like_the_layer(cell, attention, colour_blind):
    config = tiny_config(cell=cell, attention=attention, colour_blind_cnn=colour_blind, units=8)
    model = captioning.build_model(config)
    names = {layer.name for layer in model.layers}
    assert ("attention" in names) == attention and ("brightness" in names) == colour_blind
    assert model.get_layer("conv1").kernel.shape[2] == (3 if colour_blind else 5)  # 1 or 3 channels, + row and column
    images = shapes_world.generate_scenes(4, seed=0).images
    tokens, _ = captioning.Captioner(model)(images, max_length=4)
    np.testing.assert_array_equal(tokens, reference_greedy(model, images, 4))


def test_brightness_is_the_largest_channel_whatever_the_colour():
    pixels = np.array([[[[0.9, 0.1, 0.1], [0.1, 0.1, 0.9], [0.2, 0.3, 0.1]]]], "float32")  # (1, 1, 3, 3)
    np.testing.assert_allclose(captioning_layers.Brightness()(pixels)[0, 0, :, 0], [0.9, 0.9, 0.3])


def test_coordinate_channels_give_row_and_column():
    out = captioning.CoordinateChannels()(np.zeros((2, 3, 5, 1), "float32"))
    assert out.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(out[0, :, 0, 1], [-1, 0, 1])
    np.testing.assert_allclose(out[1, 2, :, 2], [-1, -0.5, 0, 0.5, 1])


# --- scores and the picture ------------------------------------------------------------------------
def test_caption_scores_by_hand():
    references = [["a small red circle"], ["a dog runs", "the dog runs fast"]]
    scores = captioning_captioner.caption_scores(references, ["a small red circle", "the dog runs fast"])
    assert scores["exact"] == 1.0 and scores["bleu"] == pytest.approx(1.0)
    assert scores["sacrebleu"] is None or scores["sacrebleu"] == pytest.approx(100.0)  # None: no sacrebleu package
    scores = captioning_captioner.caption_scores(references, ["a small red square", "the dog runs fast"])
    assert scores["exact"] == 0.5 and 0 < scores["bleu"] < 1


@pytest.mark.slow  # the tiny_result fixture trains for about a minute
def test_grid_png_is_written_with_right_and_wrong_captions(tiny_result, tmp_path):
    path = captioning.write_grid(tmp_path / "grid.png", tiny_result.data, tiny_result.predictions)
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    image = tf.io.decode_png(data).numpy()
    assert image.shape[0] > 200 and image.shape[1] > 400


# --- the command -------------------------------------------------------------------------------------
def test_main_prints_scores_writes_the_grid_and_saves(tmp_path, capsys):
    grid, out = tmp_path / "grid.png", tmp_path / "model.keras"
    result = captioning.main(
        ["--preset", "tiny", "--epochs", "1", "--grid", str(grid), "--out", str(out), "--clipnorm", "1"]
    )
    printed = capsys.readouterr().out
    assert "exact" in printed and "BLEU-4" in printed and "held-out pairs" in printed and str(grid) in printed
    assert os.path.getsize(grid) > 10_000 and os.path.getsize(out) > 0
    assert result.model.optimizer.clipnorm == 1.0 and len(result.history["loss"]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--images", "photos"], "`images_dir` and `captions_file` go together"),
        (["--images", "/nowhere", "--captions", "c.txt"], "`images_dir`: no directory '/nowhere'"),
        (["--tfds", "no_such_set"], "could not load 'no_such_set'"),
        (["--beam-width", "0"], "argument --beam-width: expected a positive int"),
    ],
)
def test_bad_arguments_stop_the_command_with_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        captioning.main(["--preset", "tiny", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_malformed_captions_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "captions.txt").write_text("a.png only a name\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        captioning.main(["--preset", "tiny", "--images", str(tmp_path), "--captions", str(tmp_path / "captions.txt")])
    assert "line 1 of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            dict(filters=(8, 8, 8, 8, 8, 8, 8)),
            ValueError,
            "`image_size` must be divisible by 2 \\*\\* len\\(filters\\) = 128",
        ),
        (dict(held_out_pairs=(("red", "hexagon"),)), ValueError, "received \\('red', 'hexagon'\\)"),
        (dict(validation_fraction=0.6, test_fraction=0.5), ValueError, "must leave images for training"),
    ],
)
def test_bad_config_values_name_the_argument(overrides, error, message):
    with pytest.raises(error, match=message):
        tiny_config(**overrides)
