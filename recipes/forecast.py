"""Forecasting: predict the next value of a real series at every time step.

Synchronous many-to-many regression, the lecture's "stock price estimation":
at every step t the network reads what is known at t and predicts x_{t+1},

    (batch, time, features) -> LSTM | GRU | SimpleRNN (return_sequences) -> Dense(1) per step

so a window of W steps gives W predictions and W squared errors to learn from.
Two choices make the small network work on real series:
  * it corrects a baseline instead of predicting from scratch: the model's
    output is anchor + Dense(h_t), the anchor being x_t (the naive forecast,
    `--anchor last`) or x_{t+1-S} (the seasonal one, `--anchor seasonal`), so
    untrained it is exactly that baseline and training only adds what it can;
  * it reads changes, not levels: the recurrent layer sees x_t - x_{t-lag}
    (lag = 1 or S) and the hour of day, never the value itself, so a level it
    never met in training (December's cold, a 2009 price) looks familiar.

    python -m recipes.forecast                                  # hourly Seattle temperatures
    python -m recipes.forecast --dataset stocks --symbol AAPL   # monthly stock prices
    python -m recipes.forecast --cell gru --window 72 --out temps.keras
    python -m recipes.forecast --preset tiny                    # seconds, for a smoke test

Data (vega_datasets, offline): hourly Seattle temperatures of 2010 (°F) or
monthly stock prices 2000-2010 (US$), split by time (70/15/15, 60/20/20),
standardized with the training period's mean and std, which the model keeps
(`SeriesScale`): its evaluation and its export forecast in °F or US$.  The
test period is scored (RMSE, MAE) for the model, the naive forecast x_{p-1}
and the seasonal one x_{p-S} (S = 24 hours or 12 months) on the same targets.

Expect (default preset, LSTM of 64 units, about 40 s on two CPU cores) a test
RMSE near 0.06 °F against 0.56 naive and 0.20 seasonal; on the stocks, a tie
with the naive forecast (prices are close to a random walk).  Measured tables:
the README.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.data import series_data
from keras_rnn_lab.diagnostics.forecasting import error_scores, naive_forecast, seasonal_forecast
from keras_rnn_lab.serving import export
from keras_rnn_lab.training import (
    Recipe,
    TrainingConfig,
    add_common_arguments,
    check_positive_int,
    common_overrides,
    config_from_preset,
    make_optimizer,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation
from recipes.parts.forecast_report import METHODS, format_report
from recipes.parts.forecast_scale import OLD_MODEL_NOTE, SeriesScale, series_scale, to_units

# Inference keeps no activations, so large batches are cheap.
EVALUATION_BATCH_SIZE = 512
UNITS = {"temp": "°F", "price": "US$"}  # the series' units, by column name


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What differs between the series: step, seasonal lag and default shapes."""

    unit: str  # one time step, for printing
    season: int  # steps per seasonal cycle: the seasonal baseline's lag
    window: int  # default input window (steps)
    stride: int  # default steps between training windows
    train_fraction: float
    validation_fraction: float
    anchor: str  # default forecast the network corrects: "last" or "seasonal"
    hour_features: bool  # sin/cos of the hour of day as extra inputs


DATASETS = {
    # A week of hours: every hour of the day seen seven times; stride 2 halves the
    # epoch time of 6,000 heavily overlapping windows.  The values change so little
    # from one day to the next that yesterday's same hour is the forecast to correct.
    "seattle_temps": Dataset("hour", 24, 168, 2, 0.7, 0.15, "seasonal", hour_features=True),
    # 11 monthly changes read a year of prices.  60/20/20: after that year of context,
    # 20% of 123 months leaves 13 to score, and GOOG's 68 months still fit.  Every
    # one of the few windows is kept (stride 1).  A price is best predicted by the
    # last one, so that is the forecast to correct.
    "stocks": Dataset("month", 12, 11, 1, 0.6, 0.2, "last", hour_features=False),
}
ANCHORS = ("last", "seasonal")


@dataclasses.dataclass
class Config(TrainingConfig):
    """Everything a run depends on.  None fields take the dataset's value
    (DATASETS) when the Config is made; the shared training fields and their
    checks come from TrainingConfig."""

    dataset: str = "seattle_temps"
    symbol: str = "AAPL"  # stocks only
    units: int = 64  # the series need little: 32 scored close to 64 in our runs
    window: int = None  # input steps per window: 168 hours (a week) or 11 months (changes over a year)
    stride: int = None  # steps between training windows: 2 (hours) or 1 (months)
    anchor: str = None  # the forecast the network corrects: "seasonal" (hours) or "last" (months)
    train_fraction: float = None  # 0.7 (hours) or 0.6 (months)
    validation_fraction: float = None  # 0.15 (hours) or 0.2 (months); the test period is the rest
    max_rows: int = None  # keep only the first N rows (tests)
    epochs: int = 60  # an upper bound: early stopping ended our runs after 6-20
    patience: int = 5  # epochs without validation progress before stopping (best weights kept)
    batch_size: int = 64
    learning_rate: float = 3e-3  # reached a lower validation loss than 1e-3, in fewer epochs

    def __post_init__(self):
        super().__post_init__()
        if self.dataset not in DATASETS:
            raise ValueError(f"Argument `dataset` must be one of {sorted(DATASETS)}; received {self.dataset!r}.")
        if self.symbol not in series_data.STOCK_SYMBOLS:
            symbols = list(series_data.STOCK_SYMBOLS)
            raise ValueError(f"Argument `symbol` must be one of {symbols}; received {self.symbol!r}.")
        if self.anchor is not None and self.anchor not in ANCHORS:
            raise ValueError(f"Argument `anchor` must be one of {list(ANCHORS)}; received {self.anchor!r}.")
        for name in ("window", "stride", "max_rows"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        defaults = DATASETS[self.dataset]
        for name in ("window", "stride", "anchor", "train_fraction", "validation_fraction"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(defaults, name))


PRESETS = {
    # Tests: 50 days of hours (the stocks whole), 11-step windows, a small model; seconds.
    "tiny": dict(units=16, window=11, max_rows=1200, epochs=6, patience=6, learning_rate=1e-2),
    "default": {},
}


@dataclasses.dataclass
class Data:
    """A series split by time and ready for the model."""

    name: str  # e.g. "seattle_temps" or "stocks AAPL"
    series: series_data.TimeSeries  # all rows, original units
    periods: dict  # "train" | "validation" | "test" -> slice of rows
    scaler: series_data.Standardizer  # fitted on the training period only
    inputs: dict  # period -> (rows - lag, features) float32: see period_inputs
    lag: int  # the anchor's lag (1 or the season): each period's first `lag` rows give no input row
    window: int
    season: int
    anchor: str
    unit: str  # one time step: "hour" or "month"
    stride: int  # steps between training windows

    @property
    def value_unit(self):
        """The series' units: "°F" or "US$"."""
        return UNITS[self.series.columns[0]]


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the model, its history and the scores of every period."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    scores: dict  # period -> method -> {"rmse", "mae"}, original units
    targets: dict  # period -> number of scored targets
    seconds: float  # wall time of `train`: data, model, fit and evaluation
    data: Data


# --- data ------------------------------------------------------------------------------
def read_series(config):
    """The raw TimeSeries named by `config.dataset` (and `config.symbol`)."""
    if config.dataset == "stocks":
        series = series_data.stock_prices(config.symbol)
    else:
        series = series_data.seattle_temps()
    if config.max_rows is not None:
        series = series.head(config.max_rows)
    return series


def feature_count(config):
    """Input columns per step (see period_inputs): z_t, the anchor, the change, hour sin/cos."""
    return 3 + 2 * DATASETS[config.dataset].hour_features


def period_inputs(scaled, times, lag, hour_features):
    """(rows - lag, features) inputs of one period, from its own rows only.

    `lag` is the anchor's: 1 (last value) or the season.  Row t holds
        z_t                   the standardized value: the training target one step later
        z_{t+1-lag}           the anchor, the baseline's forecast of z_{t+1}
        z_t - z_{t-lag}       the change over the same lag, the network's view of the series
        sin, cos of the hour  (hourly data)
    The first `lag` rows of the period have no z_{t-lag} inside it: no input row.
    """
    rows = len(scaled)
    columns = [
        scaled[lag:],  # (rows - lag, 1) z_t
        scaled[1 : rows - lag + 1],  # z_{t+1-lag}
        scaled[lag:] - scaled[: rows - lag],  # z_t - z_{t-lag}
    ]
    if hour_features:
        columns.append(series_data.cyclic_features(series_data.hour_of_day(times[lag:]), 24))  # (rows - lag, 2)
    return np.concatenate(columns, axis=1).astype("float32")


def prepare(series, config):
    """Split `series` by time, fit the scaler on the training period, build each period's inputs."""
    dataset = DATASETS[config.dataset]
    name = config.dataset + (f" {config.symbol}" if config.dataset == "stocks" else "")
    lag = dataset.season if config.anchor == "seasonal" else 1
    # The first scored target needs a whole window of input rows before it, and
    # the seasonal baseline's value inside the period.
    first_target = max(lag + config.window, dataset.season)

    def too_short(period, length, span):
        return (
            f"Argument `window` ({config.window}) is too long for {name}: its {period} period has "
            f"{length} {dataset.unit}s ({span}), and with the seasonal lag of {dataset.season} "
            f"and the {config.anchor!r} anchor it needs more than {first_target}. "
            "Use a shorter --window, or more data."
        )

    periods, scaler = series_data.split_and_scale(
        series.times, series.values, config.train_fraction, config.validation_fraction, first_target + 1, too_short
    )
    inputs = {
        period: period_inputs(scaler.transform(series.values[rows]), series.times[rows], lag, dataset.hour_features)
        for period, rows in periods.items()
    }
    shape = (config.window, dataset.season, config.anchor, dataset.unit, config.stride)
    return Data(name, series, periods, scaler, inputs, lag, *shape)


def load_data(config):
    """The series of `config`, split, scaled and ready for `training_windows`."""
    return prepare(read_series(config), config)


def training_windows(data, period, stride):
    """(inputs, targets) of `period`: (count, window, features) and (count, window, 1).

    The target at each step is the next step's standardized value.
    """
    rows = series_data.sliding_windows(data.inputs[period], data.window + 1, stride)  # (count, window + 1, features)
    return rows[:, :-1, :], rows[:, 1:, :1]


# --- model -----------------------------------------------------------------------------
def build_model(config, data=None):
    """(batch, time, features) -> next standardized value (batch, time, 1), compiled.

    The output layer, `SeriesScale`, keeps `data`'s training-period mean and
    std in the model (loaded now when `data` is None), so a saved model can
    forecast in the series' units (`to_units`)."""
    data = load_data(config) if data is None else data
    inputs = keras.Input((None, feature_count(config)), name="features")  # (batch, time, features)
    # The network sees changes, not levels: a temperature or price level it never
    # met in training (winter, a 2009 price) looks like any other to it.
    changes = inputs[..., 2:]  # (batch, time, features - 2)
    hidden = recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        return_sequences=True,
        name="recurrent",
        **layer_regularisation(config),
    )(changes)  # (batch, time, units)
    correction = keras.layers.Dense(1, name="correction")(hidden)  # (batch, time, 1)
    # It learns what to add to the anchor, a baseline forecast, not the value
    # from scratch: untrained, it starts as good as that baseline.
    next_value = keras.layers.Add(name="next_value")([inputs[..., 1:2], correction])  # (batch, time, 1)
    scale = SeriesScale(float(data.scaler.mean[0]), float(data.scaler.std[0]), data.value_unit, name="scale")
    model = keras.Model(inputs, scale(next_value), name=f"forecast_{config.cell}")  # still standardized
    model.compile(optimizer=make_optimizer(config), loss="mse", metrics=["mae"])
    return model


# --- training --------------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` on the training windows, early stopping on every validation window."""
    x, y = training_windows(data, "train", config.stride)
    return {"x": x, "y": y, "batch_size": config.batch_size, "validation_data": training_windows(data, "validation", 1)}


def callbacks(config):
    """Early stopping on val_loss, the learning rate cut after half the patience."""
    return stop_early("val_loss", config.patience, reduce_lr_patience=max(1, config.patience // 2))


def count_examples(data):
    """Every step of every training window is a scored forecast."""
    inputs, _ = training_windows(data, "train", data.stride)
    return int(inputs.shape[0] * inputs.shape[1])


RECIPE = Recipe.of(
    __name__,
    count_examples=count_examples,
    example_unit="training steps",
    callbacks=callbacks,
)


def train(config, data=None, verbose=0):
    """Fit on the training windows with early stopping, then score every period."""
    start = time.perf_counter()
    data, model, history = RECIPE.train_new_model(config, data, verbose=verbose)
    scores, targets = {}, {}
    for period in series_data.PERIODS:
        scores[period], targets[period] = evaluate(model, data, period)
    return TrainResult(config, model, history.history, scores, targets, time.perf_counter() - start, data)


# --- evaluation ------------------------------------------------------------------------
def model_forecast(model, data, period, start):
    """The model's x_p (original units) for p = start .. end of `period` (rows counted
    from the period's start), each from the `data.window` input rows just before p."""
    if start < data.lag + data.window:
        raise ValueError(f"Argument `start` ({start}) must be at least lag + window = {data.lag + data.window}.")
    # Window i holds input rows i .. i + window - 1, i.e. period rows lag + i ..,
    # and predicts period row lag + i + window; the last one has no target.
    windows = series_data.sliding_windows(data.inputs[period], data.window, 1)[:-1]
    windows = windows[start - data.lag - data.window :]  # (targets, window, features)
    predicted = model.predict(windows, batch_size=EVALUATION_BATCH_SIZE, verbose=0)[:, -1, :]  # (targets, 1)
    return to_units(model, predicted, data.scaler)[:, 0]


def evaluate(model, data, period):
    """(scores, count): method -> {"rmse", "mae"}, all on the same targets of `period`."""
    values = data.series.values[data.periods[period], 0]  # (rows,) original units
    start = max(data.lag + data.window, data.season)
    forecasts = {
        "model": model_forecast(model, data, period, start),
        "naive": naive_forecast(values, start),
        "seasonal": seasonal_forecast(values, data.season, start),
    }
    targets = values[start:]
    return {method: error_scores(targets, forecasts[method]) for method in METHODS}, len(targets)


def serving_endpoints(model):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "forecast": features
    (batch, time, features) as `prepare` makes them (standardized with the
    training period's mean and std; column 1 the anchor) -> next_value
    (batch, time, 1) in the series' units (°F, US$), un-standardized with the
    statistics the model keeps.  A model saved before it kept them serves
    standardized values, and the export says so."""
    scale = series_scale(model)
    if scale is None:
        print(OLD_MODEL_NOTE, file=sys.stderr)
        return {"forecast": export.array_endpoint(model, output="next_value", input_names=["features"])}
    print(f"next_value in {scale.unit or 'the series units'}: z * {scale.std:.6g} + {scale.mean:.6g}")

    def in_units(standardized):  # (batch, time, 1)
        return {"next_value": scale.to_units(standardized)}

    return {"forecast": export.array_endpoint(model, postprocess=in_units, input_names=["features"])}


def main(argv=None):
    """Train once and print the test table; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.forecast"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="series (default: seattle_temps)")
    parser.add_argument("--symbol", choices=series_data.STOCK_SYMBOLS, help="with --dataset stocks (default: AAPL)")
    parser.add_argument("--window", type=int, help="input steps per window (default: the dataset's)")
    parser.add_argument("--anchor", choices=ANCHORS, help="the forecast the network corrects (default: the dataset's)")
    args = parser.parse_args(argv)
    if args.symbol is not None and args.dataset != "stocks":
        parser.error("argument --symbol: only with --dataset stocks")
    with usage_errors(parser):  # bad values stop the command before any training
        choices = dict(dataset=args.dataset, symbol=args.symbol, window=args.window, anchor=args.anchor)
        config = config_from_preset(Config, PRESETS, args.preset, **choices, **common_overrides(args))
        data = load_data(config)
    result = train(config, data, verbose=training.progress_verbosity())
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    print(format_report(result))
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.forecast"))
