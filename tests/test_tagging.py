"""The tagging recipe: its data and periods, train-only scaling, F1, learning, the command."""

import collections
import dataclasses

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

import keras_rnn_lab
from keras_rnn_lab.data import series_data
from keras_rnn_lab.training import config_from_preset
from recipes import tagging


def tiny_config(**overrides):
    return config_from_preset(tagging.Config, tagging.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return tagging.train(tiny_config())


# --- data --------------------------------------------------------------------------
def test_load_data_gives_every_day_features_and_a_label():
    data = tagging.load_data(tagging.Config())
    assert data.inputs.shape == (1_461, len(tagging.FEATURES)) and data.inputs.dtype == np.float32
    assert [tagging.CLASSES[i] for i in data.labels] == list(data.series.labels)
    assert [p.stop - p.start for p in data.periods.values()] == [1_023, 219, 219]
    train = data.inputs[data.periods["train"]]
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-5)
    # Precipitation enters as log(1 + mm): check one wet day against the file.
    wet = int(np.argmax(data.series.values[:, 0]))
    expected = (np.log1p(data.series.values[wet, 0]) - data.scaler.mean[0]) / data.scaler.std[0]
    assert data.inputs[wet, 0] == pytest.approx(expected, rel=1e-5)


def test_periods_are_chronological_disjoint_and_deterministic():
    config = tiny_config()
    data, again = tagging.load_data(config), tagging.load_data(config)
    train, validation, test = (data.series.times[p] for p in data.periods.values())
    assert train.max() < validation.min() and validation.max() < test.min()
    assert sum(len(t) for t in (train, validation, test)) == config.max_rows
    np.testing.assert_array_equal(data.inputs, again.inputs)


def test_scaler_is_fitted_on_the_training_period_only():
    config = tagging.Config()
    series = series_data.seattle_weather()
    data = tagging.prepare(series, config)
    changed_values = series.values.copy()
    changed_values[data.periods["validation"].start :] *= 10
    changed = tagging.prepare(dataclasses.replace(series, values=changed_values), config)
    np.testing.assert_array_equal(changed.scaler.mean, data.scaler.mean)
    np.testing.assert_array_equal(changed.scaler.std, data.scaler.std)
    np.testing.assert_array_equal(changed.inputs[data.periods["train"]], data.inputs[data.periods["train"]])
    changed_values[:10] += 5  # the training period does move it: the test above could fail
    assert not np.array_equal(
        tagging.prepare(dataclasses.replace(series, values=changed_values), config).scaler.mean, data.scaler.mean
    )


def test_training_windows_keep_each_days_label_beside_its_measurements():
    data = tagging.load_data(tiny_config())
    inputs, labels = tagging.training_windows(data, "train", window=10, stride=2)
    assert inputs.shape[1:] == (10, len(tagging.FEATURES)) and labels.shape[1:] == (10,)
    np.testing.assert_array_equal(inputs[3], data.inputs[6:16])
    np.testing.assert_array_equal(labels[3], data.labels[6:16])


def test_majority_class_comes_from_the_training_period():
    config = tagging.Config()
    series = series_data.seattle_weather()
    periods = series_data.chronological_split(len(series.times), config.train_fraction, config.validation_fraction)
    labels = np.full(len(series.times), "fog", dtype="<U7")
    labels[periods["train"]] = np.where(np.arange(periods["train"].stop) % 3 == 0, "fog", "snow")
    # Over all days fog is the most frequent (341 + 438); in the training period, snow (682 of 1,023).
    data = tagging.prepare(dataclasses.replace(series, labels=labels), config)
    assert tagging.CLASSES[tagging.majority_class(data)] == "snow"


# --- F1 ------------------------------------------------------------------------------
def test_per_class_f1_by_hand():
    labels = [0, 0, 1, 1, 2]
    predicted = [0, 1, 1, 1, 0]
    f1, support = tagging.per_class_f1(labels, predicted, num_classes=4)
    # class 0: precision 1/2, recall 1/2 -> 0.5; class 1: precision 2/3, recall 1 -> 0.8;
    # class 2: never predicted -> 0; class 3: absent and never predicted -> 0.
    np.testing.assert_allclose(f1, [0.5, 0.8, 0.0, 0.0])
    np.testing.assert_array_equal(support, [2, 2, 1, 0])
    with pytest.raises(ValueError, match="same size; received 2 and 3"):
        tagging.per_class_f1([0, 1], [0, 1, 1], num_classes=2)


def test_per_class_f1_matches_scikit_learn(rng):
    labels = rng.integers(0, 5, size=300)
    predicted = np.where(rng.random(300) < 0.6, labels, rng.integers(0, 4, size=300))  # class 4 never predicted
    f1, _ = tagging.per_class_f1(labels, predicted, num_classes=5)
    np.testing.assert_allclose(f1, f1_score(labels, predicted, labels=range(5), average=None, zero_division=0))


# --- model and training ------------------------------------------------------------------
@pytest.mark.parametrize("builtin", [False, True])
def test_bidirectional_model_wraps_the_chosen_layer(builtin):
    model = tagging.build_model(tiny_config(cell="gru", units=5, bidirectional=True, builtin=builtin))
    wrapper = model.get_layer("bidirectional")
    assert isinstance(wrapper, keras.layers.Bidirectional)
    expected = keras.layers.GRU if builtin else keras_rnn_lab.GRU
    assert type(wrapper.forward_layer) is expected and type(wrapper.backward_layer) is expected
    assert wrapper.backward_layer.go_backwards
    assert model.output_shape == (None, None, len(tagging.CLASSES))
    assert model.predict(np.zeros((2, 9, len(tagging.FEATURES)), "float32"), verbose=0).shape == (2, 9, 5)


def test_the_recipe_trains_on_overlapping_windows_and_stops_on_validation_accuracy():
    config = tiny_config()
    data = tagging.load_data(config)
    arguments = tagging.fit_arguments(config, None, data)
    np.testing.assert_array_equal(arguments["y"], tagging.training_windows(data, "train", 10, 2)[1])
    validation_inputs, validation_labels = arguments["validation_data"]
    days = data.periods["validation"]
    assert validation_labels.size == (days.stop - days.start) // 10 * 10  # each validation day at most once
    assert tagging.RECIPE.count_examples(data) == data.periods["train"].stop  # the training days
    early = [c for c in tagging.RECIPE.callbacks(config) if isinstance(c, keras.callbacks.EarlyStopping)]
    assert len(early) == 1 and early[0].monitor == "val_accuracy" and early[0].patience == config.patience


def test_tiny_preset_learns(tiny_result):
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.75 * losses[0], losses
    train = tiny_result.scores["train"]
    labels = tiny_result.data.series.labels[tiny_result.data.periods["train"]]
    assert train["model"]["accuracy"] > train["majority"]["accuracy"] + 0.1, train
    # The baseline is what it claims: the training period's most frequent label.
    name, count = collections.Counter(labels).most_common(1)[0]
    assert tagging.CLASSES[tiny_result.majority] == name
    assert train["majority"]["accuracy"] == pytest.approx(count / len(labels))


def test_reported_scores_are_the_models_own_tags(tiny_result):
    data = tiny_result.data
    days = data.periods["validation"]
    predicted = tagging.tag(tiny_result.model, data, "validation")
    assert predicted.shape == (days.stop - days.start,)
    scores = tiny_result.scores["validation"]["model"]
    assert scores["accuracy"] == pytest.approx(np.mean(predicted == data.labels[days]))
    np.testing.assert_allclose(
        scores["f1"], f1_score(data.labels[days], predicted, labels=range(5), average=None, zero_division=0)
    )


# --- the command ----------------------------------------------------------------------
def test_main_runs_bidirectional_saves_and_prints_f1(tmp_path, capsys):
    out = tmp_path / "weather.keras"
    result = tagging.main(["--preset", "tiny", "--bidirectional", "--epochs", "2", "--out", str(out)])
    assert result.config.bidirectional and len(result.history["loss"]) == 2
    printed = capsys.readouterr().out
    assert "bidirectional lstm 16" in printed and "test F1" in printed
    header = next(line for line in printed.splitlines() if line.split()[:2] == ["sun", "fog"])
    assert header.split() == list(tagging.CLASSES)
    assert "the majority baseline" in printed
    inputs = result.data.inputs[np.newaxis, :50]
    reloaded = keras.saving.load_model(out)
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), result.model.predict(inputs, verbose=0), atol=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--window", "200"], "Argument `window` (200) is longer than the validation period: 81 days"),
        (["--window", "0"], "`window` must be a positive int; received 0"),
    ],
)
def test_bad_arguments_stop_the_command_with_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit):
        tagging.main(["--preset", "tiny", *argv])
    assert message in capsys.readouterr().err


def test_unknown_label_names_the_argument():
    with pytest.raises(ValueError, match=r"`labels` holds \['hail'\]"):
        tagging.label_ids(np.array(["sun", "hail"]))
