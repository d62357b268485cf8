"""The vega_datasets series, the chronological split, the scaler and the windows."""

import numpy as np
import pandas as pd  # vega_datasets' own dependency: an independent reader of the same files
import pytest

from keras_rnn_lab.data import series_data


def read_with_pandas(name):
    return pd.read_csv(series_data.vega_file(name))


# --- the files --------------------------------------------------------------------
def test_seattle_temps_are_hourly_2010_with_one_daylight_saving_gap():
    temps = series_data.seattle_temps()
    assert temps.values.shape == (8_759, 1) and temps.columns == ("temp",)
    np.testing.assert_array_equal(temps.values[:, 0], read_with_pandas("seattle-temps.csv")["temp"].to_numpy())
    assert str(temps.times[0]) == "2010-01-01T00:00" and str(temps.times[-1]) == "2010-12-31T23:00"
    steps = np.diff(temps.times).astype("timedelta64[m]").astype(int)
    # Every step is an hour except 02:00 -> 04:00 on 14 March, when daylight saving time starts.
    assert np.sum(steps != 60) == 1
    assert str(temps.times[np.argmax(steps)]) == "2010-03-14T02:00" and steps.max() == 120


@pytest.mark.parametrize("symbol", series_data.STOCK_SYMBOLS)
def test_stock_prices_are_that_symbols_monthly_rows_in_time_order(symbol):
    prices = series_data.stock_prices(symbol)
    expected = read_with_pandas("stocks.csv").query("symbol == @symbol")
    assert len(prices.times) == (68 if symbol == "GOOG" else 123) == len(expected)
    np.testing.assert_array_equal(prices.values[:, 0], expected["price"].to_numpy())
    assert np.all(np.diff(prices.times) > np.timedelta64(0))
    months = prices.times.astype("datetime64[M]")
    np.testing.assert_array_equal(np.diff(months).astype(int), 1)  # consecutive months, none missing
    assert str(months[-1]) == "2010-03"


def test_seattle_weather_has_four_measurements_and_a_label_a_day():
    days = series_data.seattle_weather()
    expected = read_with_pandas("seattle-weather.csv")
    assert days.values.shape == (1_461, 4) and days.columns == series_data.WEATHER_COLUMNS
    np.testing.assert_array_equal(days.values, expected[list(series_data.WEATHER_COLUMNS)].to_numpy())
    np.testing.assert_array_equal(days.labels, expected["weather"].to_numpy())
    assert set(days.labels) == {"sun", "fog", "rain", "drizzle", "snow"}
    np.testing.assert_array_equal(np.diff(days.times.astype("datetime64[D]")).astype(int), 1)


def test_head_keeps_the_first_rows_of_every_field():
    days = series_data.seattle_weather()
    first = days.head(40)
    np.testing.assert_array_equal(first.times, days.times[:40])
    np.testing.assert_array_equal(first.values, days.values[:40])
    np.testing.assert_array_equal(first.labels, days.labels[:40])
    assert first.columns == days.columns
    assert series_data.seattle_temps().head(5).labels is None
    assert len(days.head(10_000).times) == 1_461
    with pytest.raises(ValueError, match="`rows` must be a positive int; received 0"):
        days.head(0)


def test_unknown_symbol_and_file_name_the_argument():
    with pytest.raises(ValueError, match=r"`symbol` must be one of .*'TSLA'"):
        series_data.stock_prices("TSLA")
    with pytest.raises(ValueError, match=r"`name`: no file 'nope.csv'"):
        series_data.vega_file("nope.csv")


# --- split, scaler, windows --------------------------------------------------------
def test_chronological_split_is_consecutive_disjoint_and_deterministic():
    periods = series_data.chronological_split(1_000, 0.7, 0.15)
    assert list(periods) == list(series_data.PERIODS)
    assert [(p.start, p.stop) for p in periods.values()] == [(0, 700), (700, 850), (850, 1_000)]
    rows = np.concatenate([np.arange(1_000)[p] for p in periods.values()])
    np.testing.assert_array_equal(rows, np.arange(1_000))  # every row once, in time order
    assert series_data.chronological_split(1_000, 0.7, 0.15) == periods


@pytest.mark.parametrize(
    "args, match",
    [
        ((100, 0.0, 0.1), "`train_fraction`"),
        ((100, 0.7, 1.5), "`validation_fraction`"),
        ((100, 0.7, 0.3), r"`train_fraction` \+ `validation_fraction` must be < 1"),
        ((3, 0.5, 0.1), "leave the \\['validation'\\] period"),
        ((0, 0.7, 0.15), "`length` must be a positive int"),
    ],
)
def test_chronological_split_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        series_data.chronological_split(*args)


def test_standardizer_uses_the_statistics_of_the_rows_it_is_fitted_on(rng):
    train = rng.normal(5.0, 3.0, size=(200, 2))
    scaler = series_data.Standardizer.fit(train)
    np.testing.assert_allclose(scaler.mean, train.mean(axis=0))
    np.testing.assert_allclose(scaler.std, train.std(axis=0))
    scaled = scaler.transform(train)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.std(axis=0), 1)
    later = rng.normal(50.0, 1.0, size=(10, 2))  # another period keeps the training statistics
    np.testing.assert_allclose(scaler.transform(later), (later - train.mean(axis=0)) / train.std(axis=0))
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(later)), later)


def test_standardizer_keeps_a_constant_column_finite():
    scaler = series_data.Standardizer.fit([[1.0, 2.0], [1.0, 4.0]])
    np.testing.assert_array_equal(scaler.transform([[3.0, 3.0]]), [[2.0, 0.0]])
    with pytest.raises(ValueError, match="`values` must be a non-empty"):
        series_data.Standardizer.fit(np.zeros((0, 2)))


def test_sliding_windows_by_hand():
    windows = series_data.sliding_windows(np.arange(10), 4, stride=3)
    np.testing.assert_array_equal(windows, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    rows = np.arange(12).reshape(6, 2)  # (time, features)
    assert series_data.sliding_windows(rows, 5).shape == (2, 5, 2)
    np.testing.assert_array_equal(series_data.sliding_windows(rows, 5)[1], rows[1:])
    windows[0, 0] = 99  # copies: the series is untouched
    assert series_data.sliding_windows(np.arange(10), 4)[0, 0] == 0


def test_sliding_windows_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"`length` \(11\) must be at most the number of rows, 10"):
        series_data.sliding_windows(np.arange(10), 11)
    with pytest.raises(ValueError, match="`stride` must be a positive int; received 0"):
        series_data.sliding_windows(np.arange(10), 3, stride=0)
    with pytest.raises(TypeError, match="`length` must be a positive int; received 2.5"):
        series_data.sliding_windows(np.arange(10), 2.5)


def test_calendar_features():
    times = np.array(
        ["2012-01-01T00:00", "2012-01-01T06:00", "2012-12-31T23:00", "2013-01-01T12:00"], dtype="datetime64[m]"
    )
    np.testing.assert_array_equal(series_data.hour_of_day(times), [0, 6, 23, 12])
    np.testing.assert_array_equal(series_data.day_of_year(times), [0, 0, 365, 0])  # 2012 is a leap year
    features = series_data.cyclic_features([0, 6, 12, 24], 24)
    np.testing.assert_allclose(features, [[0, 1], [1, 0], [0, -1], [0, 1]], atol=1e-12)


def test_split_and_scale_fits_on_the_training_period_and_refuses_short_periods():
    times = np.arange(100).astype("datetime64[h]")
    values = np.arange(100.0)[:, np.newaxis] ** 2
    periods, scaler = series_data.split_and_scale(times, values, 0.6, 0.2, min_rows=20)
    assert periods == series_data.chronological_split(100, 0.6, 0.2)
    np.testing.assert_allclose(scaler.mean, values[:60].mean(axis=0))
    np.testing.assert_allclose(scaler.std, values[:60].std(axis=0))
    message = lambda period, length, span: f"{period} has {length} ({span})"  # noqa: E731
    with pytest.raises(ValueError, match=r"^validation has 20 \(1970-01-03T12 \.\. 1970-01-04T07\)$"):
        series_data.split_and_scale(times, values, 0.6, 0.2, min_rows=21, too_short=message)
    with pytest.raises(ValueError, match="The validation period .* has 20 rows; expected at least 21"):
        series_data.split_and_scale(times, values, 0.6, 0.2, min_rows=21)
