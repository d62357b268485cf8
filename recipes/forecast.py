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

Data (vega_datasets, offline): `seattle_temps`, 8,759 hourly temperatures of
2010 in °F; `stocks`, monthly prices 2000 - March 2010 of AAPL, AMZN, IBM, MSFT
(123 months) and GOOG (68 months, from Aug 2004).  The split is by time: the
first 70% of the hours train, the next 15% validate (early stopping), the last
15% (7 Nov - 31 Dec) test; the monthly stocks use 60/20/20, since a period
needs a year of context plus one month to be scored at all.  Every window lies
inside one period (its first lag rows only feed the changes), and the mean and
standard deviation that scale the values are the training period's.

Evaluation.  Every target x_p of the test period that has a full window and
a seasonal value inside the period is forecast three ways, scored in the
series' units (RMSE and MAE) on exactly the same targets:
    model     the last output of the window just before p (W = --window steps)
    naive     x_{p-1}: "the same as now", the random walk's best guess
    seasonal  x_{p-S}: the same hour yesterday (S = 24) or month last year (S = 12)

What to expect (default preset, LSTM of 64 units; measured on two shared CPU
cores).  The temperatures vary so smoothly (the same hour on consecutive days
differs by about 0.2 °F) that they look like hourly climate normals rather
than raw readings, and the seasonal forecast is the bar to clear, not the naive
one.  168-hour windows, seasonal anchor, 10-20 epochs, about 40 s: test RMSE
0.057-0.059 °F (seeds 0-2) against 0.563 naive and 0.204 seasonal (MAE 0.048
against 0.435 and 0.165).  The network has in effect learnt "yesterday's same
hour plus the change since yesterday", a rule that alone scores 0.066 here.
On the monthly stocks (window 11, last-value anchor, a few seconds) the model
is level with the naive forecast, a few percent either way: test RMSE (US$)
AAPL 13.5 vs 14.4 naive, AMZN 10.4 vs 10.8, IBM 5.86 vs 5.69 (worse), MSFT
1.58 vs 1.60 (MAE worse), seasonal 5x worse for all.  That is the honest
result: a month's price change is close to unpredictable from past prices (a
random walk), 60 training windows are few, and 13 test months (2 for GOOG)
are luck, not a measurement; the output says so.
"""

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_rnn_lab.data import series_data  # noqa: E402
from keras_rnn_lab.serving import export  # noqa: E402
from keras_rnn_lab.training import (  # noqa: E402
    add_common_arguments,
    check_clip,
    check_positive_int,
    check_rate,
    common_overrides,
    config_from_preset,
    make_optimizer,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import Regularisation, check_penalties, layer_regularisation  # noqa: E402

# Inference keeps no activations, so large batches are cheap.
EVALUATION_BATCH_SIZE = 512
METHODS = ("model", "naive", "seasonal")


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
class Config(Regularisation):
    """Everything a run depends on.  None fields take the dataset's value
    (DATASETS) when the Config is made."""

    dataset: str = "seattle_temps"
    symbol: str = "AAPL"  # stocks only
    cell: str = "lstm"
    builtin: bool = False  # True: keras.layers' layer of the same name, for comparisons
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
    clipnorm: float = None  # gradient clipping, see training.make_optimizer; None: off
    clipvalue: float = None
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Argument `dataset` must be one of {sorted(DATASETS)}; received {self.dataset!r}.")
        if self.symbol not in series_data.STOCK_SYMBOLS:
            symbols = list(series_data.STOCK_SYMBOLS)
            raise ValueError(f"Argument `symbol` must be one of {symbols}; received {self.symbol!r}.")
        if self.anchor is not None and self.anchor not in ANCHORS:
            raise ValueError(f"Argument `anchor` must be one of {list(ANCHORS)}; received {self.anchor!r}.")
        for name in ("units", "epochs", "patience", "batch_size"):
            check_positive_int(name, getattr(self, name))
        for name in ("window", "stride", "max_rows"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        for name in ("clipnorm", "clipvalue"):
            check_clip(name, getattr(self, name))
        for name in ("dropout", "recurrent_dropout"):
            check_rate(name, getattr(self, name))
        check_penalties(self)
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
    unit: str


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
    periods = series_data.chronological_split(len(series.times), config.train_fraction, config.validation_fraction)
    lag = dataset.season if config.anchor == "seasonal" else 1
    # The first scored target needs a whole window of input rows before it, and
    # the seasonal baseline's value inside the period.
    first_target = max(lag + config.window, dataset.season)
    for period_name, rows in periods.items():
        length = rows.stop - rows.start
        if length <= first_target:
            first, last = series.times[rows.start], series.times[rows.stop - 1]
            raise ValueError(
                f"Argument `window` ({config.window}) is too long for {name}: its {period_name} period has "
                f"{length} {dataset.unit}s ({first} .. {last}), and with the seasonal lag of {dataset.season} "
                f"and the {config.anchor!r} anchor it needs more than {first_target}. "
                "Use a shorter --window, or more data."
            )
    scaler = series_data.Standardizer.fit(series.values[periods["train"]])
    inputs = {
        period: period_inputs(scaler.transform(series.values[rows]), series.times[rows], lag, dataset.hour_features)
        for period, rows in periods.items()
    }
    return Data(name, series, periods, scaler, inputs, lag, config.window, dataset.season, config.anchor, dataset.unit)


def load_data(config):
    """The series of `config`, split, scaled and ready for `training_windows`."""
    return prepare(read_series(config), config)


def training_windows(data, period, stride):
    """(inputs, targets) of `period`: (count, window, features) and (count, window, 1).

    The target at each step is the next step's standardized value.
    """
    rows = series_data.sliding_windows(data.inputs[period], data.window + 1, stride)  # (count, window + 1, features)
    return rows[:, :-1, :], rows[:, 1:, :1]


def build_model(config):
    """(batch, time, features) -> next standardized value (batch, time, 1), compiled."""
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
    outputs = keras.layers.Add(name="next_value")([inputs[..., 1:2], correction])  # (batch, time, 1)
    model = keras.Model(inputs, outputs, name=f"forecast_{config.cell}")
    model.compile(optimizer=make_optimizer(config), loss="mse", metrics=["mae"])
    return model


def naive_forecast(values, start):
    """x_{p-1} for every target x_p, p = start .. len(values) - 1."""
    if start < 1:
        raise ValueError(f"Argument `start` ({start}) must be at least 1.")
    return np.asarray(values)[start - 1 : -1]


def seasonal_forecast(values, season, start):
    """x_{p-season} for every target x_p, p = start .. len(values) - 1."""
    if start < season:
        raise ValueError(f"Argument `start` ({start}) must be at least `season` ({season}).")
    values = np.asarray(values)
    return values[start - season : len(values) - season]


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
    return data.scaler.inverse_transform(predicted)[:, 0]


def error_scores(targets, predicted):
    """{"rmse", "mae"} of `predicted` against `targets`."""
    errors = np.asarray(predicted, dtype="float64") - np.asarray(targets, dtype="float64")
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}


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


def train(config, data=None, verbose=0):
    """Fit on the training windows with early stopping, then score every period."""
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    data = load_data(config) if data is None else data
    model = build_model(config)
    history = model.fit(
        *training_windows(data, "train", config.stride),
        validation_data=training_windows(data, "validation", 1),
        batch_size=config.batch_size,
        epochs=config.epochs,
        callbacks=stop_early("val_loss", config.patience, reduce_lr_patience=max(1, config.patience // 2)),
        verbose=verbose,
    )
    scores, targets = {}, {}
    for period in series_data.PERIODS:
        scores[period], targets[period] = evaluate(model, data, period)
    return TrainResult(config, model, history.history, scores, targets, time.perf_counter() - start, data)


def format_report(result):
    """The test table and a verdict: did the model beat the naive forecast?"""
    config, data, scores = result.config, result.data, result.scores["test"]
    test = data.periods["test"]
    first = test.start + max(data.lag + data.window, data.season)
    units = {"temp": "°F", "price": "US$"}[data.series.columns[0]]
    labels = {
        "model": f"{config.cell}{' (keras)' if config.builtin else ''} {config.units}, corrects {config.anchor}",
        "naive": f"naive (last {data.unit})",
        "seasonal": f"seasonal ({data.season} {data.unit}s back)",
    }
    lines = [
        f"{data.name}: test targets {data.series.times[first]} .. {data.series.times[test.stop - 1]} "
        f"({result.targets['test']} {data.unit}s, {units}); "
        f"{len(result.history['loss'])} epochs, {result.seconds:.0f} s",
        f"{'method':<34} {'RMSE':>8} {'MAE':>8}",
    ]
    lines += [f"{labels[m]:<34} {scores[m]['rmse']:>8.3f} {scores[m]['mae']:>8.3f}" for m in METHODS]
    for baseline in ("naive", "seasonal"):
        gain = 1 - scores["model"]["rmse"] / scores[baseline]["rmse"]
        verdict = "beats" if gain > 0 else "does NOT beat"
        change = f"{100 * abs(gain):.1f}% {'lower' if gain > 0 else 'higher'}"
        lines.append(f"The model {verdict} the {baseline} forecast: test RMSE {change}.")
    if config.dataset == "stocks" and scores["model"]["rmse"] >= scores["naive"]["rmse"]:
        lines.append("Monthly prices are close to a random walk: the last price is hard to improve on.")
    if result.targets["test"] < 20:
        lines.append(f"Only {result.targets['test']} test targets: a few months' luck, not a measurement.")
    return "\n".join(lines)


def serving_endpoints(model):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "forecast": features
    (batch, time, features) as `prepare` makes them (standardized; column 1 the
    anchor) -> next_value (batch, time, 1), standardized like the inputs: the
    scaler's mean and std (printed by training) turn it back into the series' units."""
    return {"forecast": export.array_endpoint(model, output="next_value", input_names=["features"])}


def main(argv=None):
    """Train once and print the test table; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export.export_command(argv[1:], "python -m recipes.forecast", keras.saving.load_model, serving_endpoints)
    parser = argparse.ArgumentParser(
        prog="python -m recipes.forecast", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    result = train(config, data, verbose=2)
    if args.out is not None:
        result.model.save(args.out)
    print(format_report(result))
    return result


if __name__ == "__main__":
    main()
