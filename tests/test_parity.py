"""The parity recipe: its data, that the tiny preset learns, the command, its errors."""

import dataclasses

import keras
import numpy as np
import pytest

import keras_rnn_lab
from keras_rnn_lab.training import config_from_preset
from recipes import parity


def tiny_config(**overrides):
    return config_from_preset(parity.Config, parity.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return parity.train(tiny_config())


def decode(row, length):
    """A padded token row back to its bit string, e.g. [2, 1, 2, 0] -> "101"."""
    return "".join({parity.ZERO: "0", parity.ONE: "1"}[int(t)] for t in row[:length])


# --- data ----------------------------------------------------------------------
def test_labels_match_a_direct_count_of_the_ones():
    data = parity.load_data(tiny_config())
    assert set(data) == set(parity.SPLITS)
    for split in data.values():
        for row, length, label in zip(split.tokens, split.lengths, split.labels):
            bits = decode(row, length)  # KeyError if a padding or unknown token sits inside
            assert label == (1 if bits.count("1") % 2 == 0 else 0)
        # Both answers occur: a constant label could not test anything.
        assert 0 < split.labels.mean() < 1


def test_lengths_are_in_the_requested_ranges_and_padding_is_zero():
    config = tiny_config()
    data = parity.load_data(config)
    ranges = {
        "train": config.train_lengths,
        "validation": config.train_lengths,
        "medium": config.medium_lengths,
        "long": config.long_lengths,
    }
    sizes = {"train": config.train_size, "validation": config.validation_size, "medium": 50, "long": 50}
    for name, split in data.items():
        low, high = ranges[name]
        assert split.tokens.dtype == np.int32 and split.tokens.shape[0] == sizes[name]
        assert low <= split.lengths.min() and split.lengths.max() <= high
        # Padded to the longest string drawn, no wider.
        assert split.tokens.shape[1] == split.lengths.max()
        positions = np.arange(split.tokens.shape[1])
        inside = positions[np.newaxis, :] < split.lengths[:, np.newaxis]
        assert np.all(split.tokens[~inside] == parity.PAD)
        assert np.all(np.isin(split.tokens[inside], [parity.ZERO, parity.ONE]))


def test_random_bit_strings_cover_every_length_and_both_bits(rng):
    split = parity.random_bit_strings(rng, 2_000, (3, 7))
    assert sorted(set(split.lengths.tolist())) == [3, 4, 5, 6, 7]
    bits = split.tokens[split.tokens != parity.PAD]
    # Uniform bits: about half are 1s (a std of ~0.006 here).
    assert abs(np.mean(bits == parity.ONE) - 0.5) < 0.05


def test_embedding_mask_marks_exactly_the_bits():
    split = parity.load_data(tiny_config())["medium"]
    mask = keras.layers.Embedding(parity.VOCABULARY_SIZE, 8, mask_zero=True).compute_mask(split.tokens)
    mask = keras.ops.convert_to_numpy(mask)
    np.testing.assert_array_equal(mask, split.tokens != parity.PAD)
    np.testing.assert_array_equal(mask.sum(axis=1), split.lengths)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_extra_padding_does_not_change_the_answer(cell):
    config = tiny_config(cell=cell)
    split = parity.load_data(config)["medium"]
    model = parity.build_model(config)
    padded = np.pad(split.tokens, [(0, 0), (0, 17)])  # 17 more PAD steps after every string
    np.testing.assert_allclose(
        model.predict(padded, verbose=0), model.predict(split.tokens, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_data_is_deterministic_and_splits_draw_independently():
    config = tiny_config(seed=3)
    first, second = parity.load_data(config), parity.load_data(config)
    for name in parity.SPLITS:
        np.testing.assert_array_equal(first[name].tokens, second[name].tokens)
    other_seed = parity.load_data(tiny_config(seed=4))
    assert not np.array_equal(other_seed["train"].tokens, first["train"].tokens)
    # A bigger training set leaves the evaluation strings as they were.
    bigger = parity.load_data(tiny_config(seed=3, train_size=3_000))
    np.testing.assert_array_equal(bigger["long"].tokens, first["long"].tokens)


# --- model and training --------------------------------------------------------
@pytest.mark.parametrize("builtin", [False, True])
@pytest.mark.parametrize("cell, layer_class", [("lstm", "LSTM"), ("gru", "GRU"), ("simple_rnn", "SimpleRNN")])
def test_build_model_uses_the_chosen_recurrent_layer(cell, layer_class, builtin):
    model = parity.build_model(tiny_config(cell=cell, units=5, builtin=builtin))
    embedding, recurrent, dense = model.layers
    assert embedding.mask_zero and embedding.input_dim == parity.VOCABULARY_SIZE
    expected = getattr(keras.layers, layer_class) if builtin else getattr(keras_rnn_lab, layer_class)
    assert type(recurrent) is expected
    assert recurrent.units == 5 and dense.units == 2
    assert model.output_shape == (None, 2)


def test_tiny_preset_learns(tiny_result):
    config = tiny_result.config
    losses = tiny_result.history["loss"]
    assert 2 <= len(losses) <= config.epochs
    assert losses[-1] < 0.5 * losses[0], losses
    # Untrained, the same architecture is near chance on the short strings.
    validation = parity.load_data(config)["validation"]
    untrained = parity._accuracy(parity.build_model(config), validation)
    assert untrained < 0.7
    assert tiny_result.accuracy["validation"] > 0.9
    assert tiny_result.accuracy["validation"] > untrained + 0.2


def test_reported_accuracies_are_the_models_own_on_each_split():
    # Barely trained, so the splits score differently and a mix-up would show.
    result = parity.train(tiny_config(epochs=1, train_size=256))
    assert len(set(result.accuracy.values())) > 1, result.accuracy
    data = parity.load_data(result.config)
    assert set(result.accuracy) == set(parity.SPLITS)
    for name, split in data.items():
        predicted = np.argmax(result.model.predict(split.tokens, verbose=0), axis=1)
        assert result.accuracy[name] == pytest.approx(np.mean(predicted == split.labels), abs=1e-6)


# --- the command ---------------------------------------------------------------
@pytest.mark.slow  # three trainings
def test_main_runs_each_seed_prints_the_table_and_saves(tmp_path, capsys):
    out = tmp_path / "parity.keras"
    results = parity.main(["--preset", "tiny", "--cell", "gru", "--epochs", "2", "--seeds", "0,1", "--out", str(out)])
    assert [r.config.seed for r in results] == [0, 1]
    assert all(r.config.cell == "gru" and r.config.epochs == 2 for r in results)
    printed = capsys.readouterr().out
    header, _, *rows = printed[printed.index("cell ") :].strip().splitlines()
    # cell, seed, then accuracies on train, validation, 7-12 and 20-30 (the tiny
    # preset's longer splits), epochs, seconds.
    assert header.split() == ["cell", "seed", "1-6", "train", "1-6", "val", "7-12", "20-30", "epochs", "seconds"]
    assert len(rows) == 3 and rows[-1].startswith("worst")
    worst_long = rows[-1].split()[4]
    assert worst_long == f"{100 * min(r.accuracy['long'] for r in results):.2f}%"
    for row, result in zip(rows[:2], results):
        cell, seed, train, validation, medium, long, epochs, _ = row.split()
        assert (cell, int(seed), int(epochs)) == ("gru", result.config.seed, len(result.history["loss"]))
        assert medium == f"{100 * result.accuracy['medium']:.2f}%"
        assert long == f"{100 * result.accuracy['long']:.2f}%"
        saved = keras.saving.load_model(tmp_path / f"parity-seed{result.config.seed}.keras")
        tokens = parity.load_data(result.config)["long"].tokens
        np.testing.assert_allclose(saved.predict(tokens, verbose=0), result.model.predict(tokens, verbose=0), atol=1e-6)


def test_main_builtin_flag_trains_keras_own_layer(capsys):
    (result,) = parity.main(["--preset", "tiny", "--builtin", "--epochs", "1", "--seed", "2"])
    assert result.config.builtin and result.config.seed == 2
    assert type(result.model.layers[1]) is keras.layers.LSTM
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert any(row[:2] == ["lstm", "2"] for row in rows)


@pytest.mark.parametrize(
    "argv, argument",
    [
        (["--preset", "huge"], "--preset"),
        (["--cell", "transformer"], "--cell"),
        (["--seeds", "0,x"], "--seeds"),
        (["--seeds", "1,1"], "--seeds"),
        (["--seed", "1", "--seeds", "0,1"], "--seeds"),
        (["--epochs", "0"], "--epochs"),
        (["--out", "model.h5"], "--out"),
        (["--learning-rate", "-0.1"], "--learning-rate"),  # rejected by the shared argparse type
    ],
)
def test_bad_command_line_names_the_argument(argv, argument, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parity.main(argv)
    assert exit_info.value.code == 2
    assert argument in capsys.readouterr().err


# --- errors from the Python API ------------------------------------------------
@pytest.mark.parametrize(
    "overrides, error, argument",
    [
        ({"train_lengths": (20, 1)}, ValueError, "train_lengths"),
        ({"long_lengths": (0, 5)}, ValueError, "long_lengths"),
        ({"medium_lengths": 50}, TypeError, "medium_lengths"),
        ({"medium_lengths": (21, 100, 200)}, TypeError, "medium_lengths"),
        ({"units": 0}, ValueError, "units"),
        ({"batch_size": "64"}, TypeError, "batch_size"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate"),
    ],
)
def test_bad_config_names_the_argument(overrides, error, argument):
    with pytest.raises(error, match=f"`{argument}`.*received"):
        parity.Config(**overrides)


def test_load_data_rechecks_lengths_changed_after_construction():
    config = tiny_config()
    config.train_lengths = (9, 3)
    with pytest.raises(ValueError, match=r"`train_lengths`.*1 <= min <= max; received \(9, 3\)"):
        parity.load_data(config)


def test_random_bit_strings_reject_min_above_max(rng):
    with pytest.raises(ValueError, match="`lengths`.*received"):
        parity.random_bit_strings(rng, 10, (5, 3))


def test_unknown_cell_and_preset_are_named():
    with pytest.raises(ValueError, match="`cell`.*'rnn'"):  # the Config itself, before any model
        dataclasses.replace(tiny_config(), cell="rnn")
    with pytest.raises(ValueError, match="`preset`.*'huge'"):
        config_from_preset(parity.Config, parity.PRESETS, "huge")
