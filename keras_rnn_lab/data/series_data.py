"""Real time series, offline, and the chronological tools the series recipes share.

The data ship inside the `vega_datasets` wheel (MIT); nothing here downloads:

    temps = seattle_temps()          # hourly Seattle temperatures, 2010, in °F
    prices = stock_prices("AAPL")    # monthly closing prices, 2000-2010, in US$
    days = seattle_weather()         # daily Seattle weather 2012-2015, labelled

A time series is split by time, never at random: the model learns from the
past and is judged on a later period it has never seen, as it would be used.

    periods = chronological_split(len(temps.times), 0.7, 0.15)  # train, validation, test
    scaler = Standardizer.fit(temps.values[periods["train"]])    # training rows only
    windows = sliding_windows(scaler.transform(temps.values), length=168, stride=1)

The series recipes (forecast, tagging) do the first two steps with one call,
which also refuses periods too short for their windows:

    periods, scaler = split_and_scale(temps.times, temps.values, 0.7, 0.15, min_rows=169, too_short=message)
"""

import csv
import dataclasses
import datetime
import importlib.resources
import numbers

import numpy as np

from keras_rnn_lab._validation import check_positive_int

VEGA_DATA = importlib.resources.files("vega_datasets") / "_data"
# Symbols in vega's stocks.csv: 123 months (Jan 2000 - Mar 2010) each, GOOG 68 (from Aug 2004).
STOCK_SYMBOLS = ("AAPL", "AMZN", "GOOG", "IBM", "MSFT")
WEATHER_COLUMNS = ("precipitation", "temp_max", "temp_min", "wind")
PERIODS = ("train", "validation", "test")


@dataclasses.dataclass
class TimeSeries:
    """Rows in time order, one per time step."""

    times: np.ndarray  # (n,) datetime64[m]
    values: np.ndarray  # (n, columns) float64, in the file's units
    columns: tuple  # a name per column of `values`
    labels: np.ndarray = None  # (n,) str, one per row, for files that have them

    def head(self, rows):
        """The first `rows` rows (all of them if there are fewer)."""
        rows = check_positive_int("rows", rows)
        labels = None if self.labels is None else self.labels[:rows]
        return TimeSeries(self.times[:rows], self.values[:rows], self.columns, labels)


def vega_file(name):
    """The path of a file shipped in vega_datasets' `_data` folder."""
    path = VEGA_DATA / name
    if not path.is_file():
        available = sorted(p.name for p in VEGA_DATA.iterdir())
        raise ValueError(f"Argument `name`: no file {name!r} in vega_datasets; available: {available}.")
    return path


def _rows(name):
    with vega_file(name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _times(texts, format):
    stamps = [datetime.datetime.strptime(text, format) for text in texts]
    return np.array(stamps, dtype="datetime64[m]")


def seattle_temps():
    """8,759 hourly temperatures (°F), 2010-01-01 00:00 to 2010-12-31 23:00, local time.

    One hour is absent, 03:00 on 14 March, the night daylight saving time
    starts: one row short of 365 * 24.  Recipes treat the rows as consecutive
    hours; the one doubled step shifts nothing by more than that hour.
    """
    rows = _rows("seattle-temps.csv")
    values = np.array([[float(row["temp"])] for row in rows])
    return TimeSeries(_times([row["date"] for row in rows], "%Y/%m/%d %H:%M"), values, ("temp",))


def stock_prices(symbol):
    """Monthly prices (US$, first of each month) of one of STOCK_SYMBOLS."""
    if symbol not in STOCK_SYMBOLS:
        raise ValueError(f"Argument `symbol` must be one of {list(STOCK_SYMBOLS)}; received {symbol!r}.")
    rows = [row for row in _rows("stocks.csv") if row["symbol"] == symbol]
    values = np.array([[float(row["price"])] for row in rows])
    series = TimeSeries(_times([row["date"] for row in rows], "%b %d %Y"), values, ("price",))
    order = np.argsort(series.times, kind="stable")  # the file is in time order; make sure
    return TimeSeries(series.times[order], series.values[order], series.columns)


def seattle_weather():
    """1,461 days (2012-2015): WEATHER_COLUMNS and a label (sun, fog, rain, drizzle, snow).

    Precipitation is in mm, temperatures in °C, wind in m/s.
    """
    rows = _rows("seattle-weather.csv")
    values = np.array([[float(row[column]) for column in WEATHER_COLUMNS] for row in rows])
    labels = np.array([row["weather"] for row in rows])
    return TimeSeries(_times([row["date"] for row in rows], "%Y/%m/%d"), values, WEATHER_COLUMNS, labels)


def chronological_split(length, train_fraction, validation_fraction):
    """{"train", "validation", "test"} -> slice: consecutive, disjoint, in time order.

    The first `train_fraction` of the rows train, the next `validation_fraction`
    validate and the rest test; boundaries are rounded to whole rows.
    """
    length = check_positive_int("length", length)
    for name, fraction in (("train_fraction", train_fraction), ("validation_fraction", validation_fraction)):
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
            raise ValueError(f"Argument `{name}` must be a number in (0, 1); received {fraction!r}.")
    if not train_fraction + validation_fraction < 1:
        raise ValueError(
            f"Arguments `train_fraction` + `validation_fraction` must be < 1 to leave a test period; "
            f"received {train_fraction} + {validation_fraction}."
        )
    train_end = round(length * train_fraction)
    validation_end = round(length * (train_fraction + validation_fraction))
    periods = dict(zip(PERIODS, (slice(0, train_end), slice(train_end, validation_end), slice(validation_end, length))))
    empty = [name for name, period in periods.items() if period.stop <= period.start]
    if empty:
        raise ValueError(
            f"Argument `length`: {length} rows split {train_fraction}/{validation_fraction}/rest leave "
            f"the {empty} period(s) empty; expected more rows."
        )
    return periods


def period_span(times, rows):
    """ "first .. last" time of the rows `rows` (a slice), for messages."""
    return f"{times[rows.start]} .. {times[rows.stop - 1]}"


def split_and_scale(times, values, train_fraction, validation_fraction, min_rows=1, too_short=None):
    """(periods, scaler): `chronological_split` of the rows, each period at
    least `min_rows` long, and a Standardizer fitted on the training period's
    `values` only (a later period never leaks into the scaling).

    A shorter period raises ValueError with `too_short(period, length, span)`
    (span: `period_span`) as its message, so the caller can name its own
    argument (e.g. the window that needs the rows).
    """
    periods = chronological_split(len(times), train_fraction, validation_fraction)
    min_rows = check_positive_int("min_rows", min_rows)
    for name, rows in periods.items():
        length = rows.stop - rows.start
        if length < min_rows:
            span = period_span(times, rows)
            message = too_short(name, length, span) if too_short is not None else None
            raise ValueError(message or f"The {name} period ({span}) has {length} rows; expected at least {min_rows}.")
    return periods, Standardizer.fit(np.asarray(values)[periods["train"]])


@dataclasses.dataclass
class Standardizer:
    """(x - mean) / std per column, with the statistics of the rows it was fitted on."""

    mean: np.ndarray  # (columns,)
    std: np.ndarray  # (columns,)

    @classmethod
    def fit(cls, values):
        """Fit on `values` (rows, columns): pass the training period only."""
        values = np.asarray(values, dtype="float64")
        if values.ndim != 2 or len(values) == 0:
            raise ValueError(
                f"Argument `values` must be a non-empty (rows, columns) array; received shape {values.shape}."
            )
        std = values.std(axis=0)
        # A column constant over the training period carries no information there;
        # dividing by 1 keeps it finite instead of dividing by zero.
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, values):
        return (np.asarray(values, dtype="float64") - self.mean) / self.std

    def inverse_transform(self, values):
        return np.asarray(values, dtype="float64") * self.std + self.mean


def sliding_windows(array, length, stride=1):
    """(count, length, ...) copies of `array[i : i + length]` for i = 0, stride, 2 * stride, ...

    Only whole windows: a last partial window is dropped.
    """
    array = np.asarray(array)
    length = check_positive_int("length", length)
    stride = check_positive_int("stride", stride)
    if length > len(array):
        raise ValueError(f"Argument `length` ({length}) must be at most the number of rows, {len(array)}.")
    starts = np.arange(0, len(array) - length + 1, stride)
    return array[starts[:, np.newaxis] + np.arange(length)]  # (count, length, ...)


def cyclic_features(position, period):
    """(n, 2) [sin, cos] of 2 pi position / period: hour 23 lies next to hour 0."""
    angle = 2 * np.pi * np.asarray(position, dtype="float64") / period
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def hour_of_day(times):
    """(n,) hour 0-23 of datetime64 `times`."""
    return (times.astype("datetime64[h]") - times.astype("datetime64[D]")).astype(int)


def day_of_year(times):
    """(n,) day 0-365 of datetime64 `times` (0 = 1 January)."""
    return (times.astype("datetime64[D]") - times.astype("datetime64[Y]")).astype(int)
