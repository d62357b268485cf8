"""The helpers every recipe shares: clipping, the optimizer, the stops, the
lecture's initialisation and the truncated-BPTT layout."""

import argparse
import dataclasses
import math

import keras
import numpy as np
import pytest

from keras_rnn_lab import training
from keras_rnn_lab.training import ForgetGateBias, initialisation, make_optimizer, stream_windows


@dataclasses.dataclass
class _Config:
    learning_rate: float = 0.1
    clipnorm: float = None
    clipvalue: float = None


def test_clip_flags_reach_the_config_and_the_optimizer():
    parser = training.add_common_arguments(argparse.ArgumentParser(), {"default": {}})
    overrides = training.common_overrides(parser.parse_args(["--clipnorm", "2.5"]))
    assert overrides["clipnorm"] == 2.5 and overrides["clipvalue"] is None
    assert training.common_overrides(parser.parse_args(["--clipvalue", "0.5"]))["clipvalue"] == 0.5
    for bad in (["--clipnorm", "0"], ["--clipnorm", "1", "--clipvalue", "1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    optimizer = make_optimizer(_Config(clipnorm=2.5))
    assert isinstance(optimizer, keras.optimizers.Adam) and optimizer.clipnorm == 2.5
    assert make_optimizer(_Config(clipvalue=0.5)).clipvalue == 0.5
    assert make_optimizer(_Config()).clipnorm is None


def test_clipped_step_is_bounded_and_unclipped_is_not():
    """One SGD step on a gradient of norm 1000: clipnorm 1 scales it to norm 1."""
    config = dataclasses.replace(_Config(learning_rate=1.0), clipnorm=1.0)
    config.optimizer = "sgd"
    for clip, expected in ((1.0, 1.0), (None, 1000.0)):
        config.clipnorm = clip
        variable = keras.Variable(np.zeros(4, "float32"))
        make_optimizer(config).apply_gradients([(np.full(4, 500.0, "float32"), variable)])
        assert np.linalg.norm(variable.numpy()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "field, value, error, message",
    [
        ("clipnorm", 0.0, ValueError, "`clipnorm` must be None or a finite float > 0; received 0.0"),
        ("clipvalue", math.inf, ValueError, "`clipvalue` must be None or a finite float > 0; received inf"),
        ("clipnorm", "1", TypeError, "`clipnorm` must be None or a positive float; received '1' of type str"),
        ("learning_rate", -1.0, ValueError, "`learning_rate` must be a finite float > 0; received -1.0"),
    ],
)
def test_bad_optimizer_fields_are_named(field, value, error, message):
    with pytest.raises(error, match=message):
        make_optimizer(dataclasses.replace(_Config(), **{field: value}))
    with pytest.raises(
        ValueError, match="one of `clipnorm` and `clipvalue`, not both; received clipnorm=1.0, clipvalue=2.0"
    ):
        make_optimizer(_Config(clipnorm=1.0, clipvalue=2.0))


def test_compile_for_classes_takes_an_optimizer_or_a_rate():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    training.compile_for_classes(model, make_optimizer(_Config(clipvalue=0.1)))
    assert model.optimizer.clipvalue == 0.1
    training.compile_for_classes(model, 1e-3, clipnorm=5.0)
    assert model.optimizer.clipnorm == 5.0
    with pytest.raises(ValueError, match="Pass `clipnorm` in the optimizer"):
        training.compile_for_classes(model, make_optimizer(_Config()), clipnorm=1.0)


def test_stop_early_stops_on_nan_and_at_the_target(rng):
    callbacks = training.stop_early("val_accuracy", 2, mode="max", stop_at=0.9)
    assert isinstance(callbacks[0], keras.callbacks.TerminateOnNaN)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    training.compile_for_classes(model, 0.1)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")  # separable: accuracy reaches 0.9 within a few epochs
    history = model.fit(x, y, validation_data=(x, y), epochs=50, callbacks=callbacks, verbose=0)
    accuracies = history.history["val_accuracy"]
    assert accuracies[-1] >= 0.9 and all(a < 0.9 for a in accuracies[:-1]) and len(accuracies) < 50


def test_time_budget_stops_before_an_epoch_would_end_past_it(rng):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    budget = training.TimeBudget(minutes=1.0)
    readings = iter(range(0, 10_000, 7))  # every reading of its clock is 7 s after the last
    budget.clock = lambda: float(next(readings))
    x = rng.normal(size=(8, 2)).astype("float32")
    history = model.fit(x, x[:, :1], epochs=100, callbacks=[budget], verbose=0)
    # Begin 0; each epoch reads the clock twice 7 s apart (7 s long) and starts 7 s
    # after the last ended: epoch k ends at 14k s; it stops once 14k + 7 > 60, k = 4.
    assert len(history.history["loss"]) == budget.stopped_after == 4
    with pytest.raises(ValueError, match="`minutes` must be a positive number"):
        training.TimeBudget(0)


def test_time_budget_decays_the_learning_rate_linearly_to_zero_over_its_last_fraction(rng):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    budget = training.TimeBudget(minutes=1.0, decay_fraction=0.5)
    readings = iter(range(10_000))  # each reading of its clock is 1 s after the last
    budget.clock = lambda: float(next(readings))
    rates = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: rates.append(float(model.optimizer.learning_rate.numpy()))
    )
    x = rng.normal(size=(8, 2)).astype("float32")
    model.fit(x, x[:, :1], batch_size=8, epochs=100, callbacks=[budget, record], verbose=0)
    # Begin 0; epoch k reads 3k+1 (begin), 3k+2 (its one batch), 3k+3 (end).
    # Batch k has 60 - (3k + 2) s of the budget left; the decay phase is its
    # last 30 s.  It stops after epoch k = 19 (3k + 3 + the longest epoch, 2 s, > 60).
    expected = [0.1 if 58 - 3 * k >= 30 else 0.1 * (58 - 3 * k) / 30 for k in range(20)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    assert budget.stopped_after == 20 and rates[-1] < 0.01
    with pytest.raises(ValueError, match="`decay_fraction` must be in \\[0, 1\\]"):
        training.TimeBudget(1.0, decay_fraction=1.5)


def test_forget_gate_bias_and_the_lecture_initialisation():
    layer = training.recurrent_layer("lstm", 5, **initialisation("lstm", "lecture", forget_bias=3.0, seed=1))
    layer.build((None, None, 400))
    kernel, recurrent, bias = layer.get_weights()
    np.testing.assert_array_equal(bias, np.repeat([0.0, 3.0, 0.0, 0.0], 5))
    assert abs(kernel.std() - 0.1) < 0.005 and abs(recurrent.std() - 0.1) < 0.02
    keras_default = training.recurrent_layer("simple_rnn", 6, **initialisation("simple_rnn", "keras"))
    keras_default.build((None, None, 3))
    recurrent = keras_default.get_weights()[1]
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(6), atol=1e-5)  # orthogonal
    assert ForgetGateBias.from_config(ForgetGateBias(2.0).get_config()).value == 2.0
    with pytest.raises(ValueError, match="`forget_bias` applies to the LSTM only; received cell='gru'"):
        initialisation("gru", "lecture", forget_bias=1.0)
    with pytest.raises(ValueError, match="`scheme` must be one of"):
        initialisation("gru", "glorot")
    with pytest.raises(ValueError, match=r"shape \(4\*units,\); received shape \(6,\)"):
        ForgetGateBias(1.0)((6,))


def test_stream_windows_continue_each_stream_window_after_window():
    sequence = np.arange(23)
    inputs, targets = stream_windows(sequence, window=3, batch_size=2)
    # 22 steps with a target -> 11 per stream -> 3 windows of 3 (2 steps dropped per stream)
    assert inputs.shape == targets.shape == (3, 2, 3)
    np.testing.assert_array_equal(inputs[:, 0].reshape(-1), np.arange(9))
    np.testing.assert_array_equal(inputs[:, 1].reshape(-1), np.arange(11, 20))
    np.testing.assert_array_equal(targets, inputs + 1)
    with pytest.raises(ValueError, match="too short for `batch_size`=4 streams of at least `window`=3"):
        stream_windows(np.arange(12), window=3, batch_size=4)


def test_reset_states_zeroes_stateful_layers_each_epoch_and_before_validation(rng):
    model = keras.Sequential(
        [
            keras.Input((4, 2), batch_size=3),
            training.recurrent_layer("gru", 5, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    layer = model.layers[0]
    seen = []

    class Record(keras.callbacks.Callback):  # runs after ResetStates in the same list
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(np.abs(layer.states[0].numpy()).max())

        def on_test_begin(self, logs=None):
            seen.append(np.abs(layer.states[0].numpy()).max())

    x, y = rng.normal(size=(6, 4, 2)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    model.fit(
        x,
        y,
        batch_size=3,
        epochs=2,
        shuffle=False,
        validation_data=(x, y),
        callbacks=[training.ResetStates(), Record()],
        verbose=0,
    )
    assert seen == [0.0, 0.0, 0.0, 0.0]  # epoch 1, its validation, epoch 2, its validation
    assert np.abs(layer.states[0].numpy()).max() > 0  # the state did move in between


def test_reset_states_reaches_layers_inside_bidirectional_and_nested_models(rng):
    inner = keras.Sequential([keras.Input((4, 2), batch_size=3), training.recurrent_layer("lstm", 3, stateful=True)])
    model = keras.Sequential(
        [
            keras.Input((4, 2), batch_size=3),
            keras.layers.Bidirectional(training.recurrent_layer("gru", 5, stateful=True, return_sequences=True)),
            keras.layers.Dense(2),
            inner,
            keras.layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    stateful = training.recurrent_layers(model)
    assert len(stateful) == 3 and all(layer.stateful for layer in stateful)
    x, y = rng.normal(size=(6, 4, 2)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)
    assert all(np.abs(layer.states[0].numpy()).max() > 0 for layer in stateful)  # the states moved
    reset = training.ResetStates()
    reset.set_model(model)
    reset.on_epoch_begin(1)
    assert all(np.abs(state.numpy()).max() == 0 for layer in stateful for state in layer.states)


@pytest.mark.parametrize("name", ["parity", "tagging", "forecast", "video_frames", "sentiment", "char_lm"])
def test_every_recipe_config_carries_clipping_into_its_optimizer(name):
    import importlib

    recipe = importlib.import_module(f"recipes.{name}")
    fields = {f.name: f.default for f in dataclasses.fields(recipe.Config)}
    assert fields["clipvalue"] is None
    assert fields["clipnorm"] == (5.0 if name == "char_lm" else None)  # char_lm always clipped at 5
    # char_lm's clipnorm is switched off first: the Config refuses both thresholds at once.
    config = training.config_from_preset(recipe.Config, recipe.PRESETS, "tiny", {"clipnorm": None}, clipvalue=0.25)
    extra = {"sentiment": (["", "[UNK]", "a"],), "char_lm": (list("ab"),)}.get(name, ())
    model = recipe.build_model(config, *extra)
    assert model.optimizer.clipvalue == 0.25 and model.optimizer.clipnorm is None
