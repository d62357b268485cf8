"""The forecast recipe: data periods, train-only scaling, baselines, learning,
forecasts in the series' units (the model keeps its scaler), the command."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_rnn_lab.data import series_data
from keras_rnn_lab.training import config_from_preset
from recipes import forecast
from recipes.parts.forecast_scale import SeriesScale
from tests.serving import Job, serve_many


def tiny_config(**overrides):
    return config_from_preset(forecast.Config, forecast.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return forecast.train(tiny_config())


def with_values(series, rows, values):
    """A copy of `series` with `values` written into `rows`."""
    changed = series.values.copy()
    changed[rows] = values
    return dataclasses.replace(series, values=changed)


# --- data --------------------------------------------------------------------------
def test_datasets_load_with_their_own_defaults():
    temps = forecast.load_data(forecast.Config())
    assert len(temps.series.times) == 8_759 and temps.series.columns == ("temp",)
    assert (temps.window, temps.season, temps.lag, temps.anchor) == (168, 24, 24, "seasonal")
    assert temps.periods["train"].stop == round(0.7 * 8_759)
    stocks = forecast.load_data(forecast.Config(dataset="stocks", symbol="IBM"))
    assert len(stocks.series.times) == 123 and stocks.name == "stocks IBM"
    assert (stocks.window, stocks.season, stocks.lag, stocks.anchor) == (11, 12, 1, "last")
    assert [p.stop - p.start for p in stocks.periods.values()] == [74, 24, 25]  # 60/20/20
    # hour sin/cos for the hours only: z_t, anchor, change (+ sin, cos)
    assert temps.inputs["train"].shape[1] == forecast.feature_count(forecast.Config()) == 5
    assert stocks.inputs["test"].shape == (25 - 1, 3)


def test_periods_are_chronological_disjoint_and_deterministic():
    config = tiny_config()
    data, again = forecast.load_data(config), forecast.load_data(config)
    train, validation, test = (data.series.times[p] for p in data.periods.values())
    assert train.max() < validation.min() and validation.max() < test.min()
    assert sum(len(t) for t in (train, validation, test)) == config.max_rows
    for period in series_data.PERIODS:
        np.testing.assert_array_equal(data.inputs[period], again.inputs[period])


def test_scaler_is_fitted_on_the_training_period_only():
    config = tiny_config()
    series = forecast.read_series(config)
    data = forecast.prepare(series, config)
    later = slice(data.periods["validation"].start, None)
    changed = forecast.prepare(with_values(series, later, 1_000.0), config)
    np.testing.assert_array_equal(changed.scaler.mean, data.scaler.mean)
    np.testing.assert_array_equal(changed.scaler.std, data.scaler.std)
    np.testing.assert_array_equal(changed.inputs["train"], data.inputs["train"])
    np.testing.assert_allclose(data.scaler.mean, series.values[data.periods["train"]].mean(axis=0))
    # ...and it does see the training period: the test above could fail.
    moved = forecast.prepare(with_values(series, slice(0, 10), 1_000.0), config)
    assert moved.scaler.mean[0] != data.scaler.mean[0]


def test_no_period_reads_another_periods_rows():
    config = tiny_config()
    series = forecast.read_series(config)
    data = forecast.prepare(series, config)
    # The test period's first row and the validation period's last row changed:
    # the inputs of the other periods stay exactly as they were.
    test_start, validation_end = data.periods["test"].start, data.periods["validation"].stop - 1
    changed = forecast.prepare(with_values(series, [test_start, validation_end], 1_000.0), config)
    np.testing.assert_array_equal(changed.inputs["train"], data.inputs["train"])
    assert not np.array_equal(changed.inputs["validation"], data.inputs["validation"])
    changed = forecast.prepare(with_values(series, [test_start - 1], 1_000.0), config)
    np.testing.assert_array_equal(changed.inputs["test"], data.inputs["test"])


def test_period_inputs_by_hand():
    scaled = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])  # z_0 .. z_4
    inputs = forecast.period_inputs(scaled, times=None, lag=2, hour_features=False)
    # rows t = 2, 3, 4: z_t, z_{t+1-2}, z_t - z_{t-2}
    np.testing.assert_array_equal(inputs, [[3, 1, 3], [6, 3, 5], [10, 6, 7]])
    times = np.array(["2010-01-01T05:00", "2010-01-01T06:00", "2010-01-01T07:00"], dtype="datetime64[m]")
    with_hours = forecast.period_inputs(scaled[:3], times, lag=1, hour_features=True)
    np.testing.assert_allclose(with_hours[:, 3:], series_data.cyclic_features([6, 7], 24), atol=1e-7)


def test_training_targets_are_the_next_steps_value():
    data = forecast.load_data(tiny_config())
    inputs, targets = forecast.training_windows(data, "train", stride=3)
    assert inputs.shape[1:] == (data.window, 5) and targets.shape[1:] == (data.window, 1)
    np.testing.assert_array_equal(targets[:, :-1, 0], inputs[:, 1:, 0])  # z_{t+1} is the next row's z
    np.testing.assert_array_equal(inputs[1, 0], data.inputs["train"][3])


# --- baselines and scores (the baselines themselves: tests/test_forecasting.py) ------------
@pytest.mark.parametrize("anchor, baseline", [("seasonal", "seasonal"), ("last", "naive")])
def test_an_untrained_correction_forecasts_exactly_the_anchor_baseline(anchor, baseline):
    # Zero weights in the correction layer: the model outputs its anchor input,
    # so its scores must equal the baseline's on the same targets, in °F.
    config = tiny_config(anchor=anchor)
    data = forecast.load_data(config)
    model = forecast.build_model(config)
    correction = model.get_layer("correction")
    correction.set_weights([np.zeros_like(w) for w in correction.get_weights()])
    scores, count = forecast.evaluate(model, data, "validation")
    assert count == data.periods["validation"].stop - data.periods["validation"].start - max(
        data.lag + data.window, data.season
    )
    for name in ("rmse", "mae"):
        assert scores["model"][name] == pytest.approx(scores[baseline][name], abs=1e-4)
    other = {"seasonal": "naive", "naive": "seasonal"}[baseline]
    assert abs(scores["model"]["rmse"] - scores[other]["rmse"]) > 0.01


def test_reported_naive_scores_are_the_raw_test_values_own():
    data = forecast.load_data(tiny_config())
    model = forecast.build_model(tiny_config())
    scores, count = forecast.evaluate(model, data, "test")
    values = data.series.values[data.periods["test"], 0]
    targets = values[-count:]
    previous = values[-count - 1 : -1]
    assert scores["naive"]["mae"] == pytest.approx(np.mean(np.abs(targets - previous)))
    assert scores["seasonal"]["mae"] == pytest.approx(np.mean(np.abs(targets - values[-count - 24 : -24])))


# --- model and training ------------------------------------------------------------------
@pytest.mark.parametrize("builtin", [False, True])
def test_build_model_gives_one_prediction_per_step(builtin):
    config = tiny_config(cell="gru", units=5, builtin=builtin)
    model = forecast.build_model(config)
    recurrent = model.get_layer("recurrent")
    assert type(recurrent).__name__ == "GRU" and (type(recurrent).__module__.startswith("keras_rnn_lab") != builtin)
    assert model.output_shape == (None, None, 1)
    assert model.predict(np.zeros((2, 7, 5), "float32"), verbose=0).shape == (2, 7, 1)


def test_the_recipe_fits_every_training_step_and_validates_on_every_window():
    config = tiny_config(stride=3)
    data = forecast.load_data(config)
    arguments = forecast.fit_arguments(config, None, data)
    np.testing.assert_array_equal(arguments["x"], forecast.training_windows(data, "train", 3)[0])
    np.testing.assert_array_equal(arguments["validation_data"][1], forecast.training_windows(data, "validation", 1)[1])
    assert forecast.RECIPE.count_examples(data) == arguments["x"].shape[0] * config.window
    assert forecast.RECIPE.example_unit == "training steps" and arguments["batch_size"] == config.batch_size
    kinds = [type(c).__name__ for c in forecast.RECIPE.callbacks(config)]
    assert "ReduceLROnPlateau" in kinds and "EarlyStopping" in kinds


def test_tiny_preset_learns(tiny_result):
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    scores = tiny_result.scores["validation"]
    # Its anchor is the seasonal forecast; trained, the model improves on it.
    assert scores["model"]["rmse"] < scores["seasonal"]["rmse"] < scores["naive"]["rmse"], scores


# --- forecasts in the series' units ---------------------------------------------------------
def test_the_model_keeps_the_training_periods_scaler():
    config = tiny_config()
    data = forecast.load_data(config)
    scale = forecast.series_scale(forecast.build_model(config, data))
    train = forecast.read_series(config).values[data.periods["train"], 0]  # °F
    assert (scale.mean, scale.std, scale.unit) == (pytest.approx(train.mean()), pytest.approx(train.std()), "°F")
    again = SeriesScale.from_config(scale.get_config())
    assert (again.mean, again.std, again.unit) == (scale.mean, scale.std, scale.unit)
    z = np.array([[[-1.0], [0.0], [2.5]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scale(z)), z)  # training sees standardized values
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scale.to_units(z)), z * train.std() + train.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"`std` must be positive; received 0"):
        SeriesScale(mean=1.0, std=0)
    with pytest.raises(TypeError, match=r"`mean` must be a finite float; received nan"):
        SeriesScale(mean=float("nan"), std=1.0)


def test_the_export_serves_forecasts_in_the_series_units(tmp_path, capsys):
    # The defect: next_value was served standardized and the scaler was nowhere to be found.
    config = tiny_config()
    data = forecast.load_data(config)
    keras.utils.set_random_seed(3)
    model = forecast.build_model(config, data)
    model.save(tmp_path / "temps.keras")
    # A forecast model as saved before it kept its scaler (and before files recorded their
    # recipe): the same network ending at "next_value", named as the recipe named its models.
    old = keras.Model(model.inputs, model.get_layer("next_value").output, name="forecast_lstm")
    old.save(tmp_path / "old.keras")
    new_path = forecast.main(["export", "--model", str(tmp_path / "temps.keras"), "--out", str(tmp_path / "new")])
    assert "next_value in °F" in capsys.readouterr().out
    old_path = forecast.main(["export", "--model", str(tmp_path / "old.keras"), "--out", str(tmp_path / "old")])
    assert "saved before it kept its scaler: the exported next_value is standardized" in capsys.readouterr().err
    windows, _ = forecast.training_windows(data, "test", stride=7)  # (count, window, features)
    served, served_old = serve_many(
        [Job(new_path, "forecast", {"features": windows}), Job(old_path, "forecast", {"features": windows})]
    )
    # NumPy reference: the model's standardized output * std + mean of the training period's °F.
    train = forecast.read_series(config).values[data.periods["train"], 0]
    standardized = model.predict(windows, verbose=0)  # (count, window, 1)
    expected = standardized.astype("float64") * train.std() + train.mean()
    np.testing.assert_allclose(served[0]["next_value"], expected, rtol=1e-6, atol=1e-4)
    assert abs(np.mean(served[0]["next_value"]) - np.mean(train)) < 3 * np.std(train)  # temperatures, not z
    # The Keras side, from the saved file alone, agrees; so does the recipe's own evaluation.
    reloaded = keras.saving.load_model(tmp_path / "temps.keras")
    np.testing.assert_allclose(forecast.to_units(reloaded, reloaded.predict(windows, verbose=0)), expected, atol=1e-4)
    start = max(data.lag + data.window, data.season)  # the first scored target, as `evaluate` picks it
    last_steps = forecast.model_forecast(reloaded, data, "test", start)
    all_windows = series_data.sliding_windows(data.inputs["test"], data.window, 1)[start - data.lag - data.window : -1]
    reference = model.predict(all_windows, verbose=0)[:, -1, 0] * train.std() + train.mean()
    np.testing.assert_allclose(last_steps, reference, atol=1e-4)
    # The old file still loads and exports: standardized, as before, and it says so.
    np.testing.assert_allclose(served_old[0]["next_value"], standardized, atol=1e-5)
    older = keras.saving.load_model(tmp_path / "old.keras")
    with pytest.raises(ValueError, match="holds no SeriesScale"):
        forecast.to_units(older, standardized)
    np.testing.assert_allclose(forecast.to_units(older, standardized, data.scaler), expected, atol=1e-4)


# --- the command ----------------------------------------------------------------------
def test_main_runs_saves_and_reports(tmp_path, capsys):
    out = tmp_path / "temps.keras"
    result = forecast.main(["--preset", "tiny", "--epochs", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "seattle_temps: test targets" in printed
    for label in ("lstm 16, corrects seasonal", "naive (last hour)", "seasonal (24 hours back)"):
        assert label in printed
    row = next(line for line in printed.splitlines() if line.startswith("naive"))
    assert float(row.split()[-2]) == pytest.approx(result.scores["test"]["naive"]["rmse"], abs=1e-3)
    mean, std = result.data.scaler.mean[0], result.data.scaler.std[0]
    assert f"Scaler (training period): mean {mean:.4f} °F, std {std:.4f} °F" in printed
    reloaded = keras.saving.load_model(out)
    windows, _ = forecast.training_windows(result.data, "test", stride=50)
    np.testing.assert_allclose(
        reloaded.predict(windows, verbose=0), result.model.predict(windows, verbose=0), atol=1e-6
    )


def test_main_on_stocks_says_which_forecast_won(capsys):
    result = forecast.main(["--preset", "tiny", "--dataset", "stocks", "--symbol", "MSFT", "--epochs", "2"])
    assert result.data.name == "stocks MSFT" and result.targets["test"] == 25 - 12  # a year of context
    printed = capsys.readouterr().out
    assert "naive (last month)" in printed and "seasonal (12 months back)" in printed
    assert ("beats the naive forecast" in printed) != ("does NOT beat the naive forecast" in printed)
    assert "a few months' luck" in printed  # 13 targets are too few to be a measurement


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "rainfall"], "argument --dataset: invalid choice: 'rainfall'"),
        (["--dataset", "stocks", "--symbol", "TSLA"], "argument --symbol: invalid choice: 'TSLA'"),
        (["--symbol", "IBM"], "argument --symbol: only with --dataset stocks"),
        (
            ["--window", "500"],
            "Argument `window` (500) is too long for seattle_temps: its validation period has 180 hours",
        ),
        (["--dataset", "stocks", "--symbol", "GOOG", "--window", "12"], "`window` (12) is too long for stocks GOOG"),
        (["--window", "0"], "`window` must be a positive int"),
    ],
)
def test_bad_arguments_stop_the_command_with_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit):
        forecast.main(["--preset", "tiny", *argv])
    assert message in capsys.readouterr().err


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`dataset` must be one of \['seattle_temps', 'stocks'\]; received 'rain'"):
        forecast.Config(dataset="rain")
    with pytest.raises(ValueError, match=r"`symbol` must be one of .*received 'TSLA'"):
        forecast.Config(dataset="stocks", symbol="TSLA")
    with pytest.raises(ValueError, match=r"`anchor` must be one of \['last', 'seasonal'\]"):
        forecast.Config(anchor="yesterday")
    with pytest.raises(ValueError, match=r"`window` \(5000\) is too long"):
        forecast.load_data(forecast.Config(window=5_000))
