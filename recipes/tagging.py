"""Tagging: label every day of a sequence with its weather, from that day's measurements.

Synchronous many-to-many classification: the network reads a run of
consecutive days, one step per day, and gives a label for each of them,

    (batch, days, measurements) -> LSTM | GRU | SimpleRNN, optionally Bidirectional -> Dense(5) per day

so the tag of a day can use the days around it (the weather holds for a while;
a bidirectional layer also sees the days after).

    python -m recipes.tagging                          # LSTM, reads forwards
    python -m recipes.tagging --bidirectional          # reads both ways
    python -m recipes.tagging --cell gru --window 60 --out weather.keras
    python -m recipes.tagging --preset tiny            # seconds, for a smoke test

Data (vega_datasets, offline): 1,461 days of Seattle weather, 2012-2015:
precipitation (as log(1 + mm)), maximum and minimum temperature and wind, with
sin/cos of the day of the year, standardized with the training period's
statistics, and a label (sun, fog, rain, drizzle or snow).  Split by time
70/15/15: training on 30-day windows, each later period tagged in one pass.
The labels change meaning over the years (wet days are "rain" in 2012 but
"fog" in 2014-2015), so expect modest numbers: test accuracy about 0.60
against 0.53 for the majority baseline ("sun"), under 10 s on two CPU cores.
The README has the measured tables.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.data import series_data
from keras_rnn_lab.serving import export
from keras_rnn_lab.training import (
    Recipe,
    TrainingConfig,
    add_common_arguments,
    check_positive_int,
    common_overrides,
    compile_for_classes,
    config_from_preset,
    make_optimizer,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation

CLASSES = ("sun", "fog", "rain", "drizzle", "snow")  # label ids 0-4, most frequent first
FEATURES = ("log1p_precipitation", "temp_max", "temp_min", "wind", "sin_day", "cos_day")


@dataclasses.dataclass
class Config(TrainingConfig):
    """Everything a run depends on.  The shared training fields and their
    checks come from TrainingConfig."""

    units: int = 32  # five labels from six inputs a day, ~1,000 training days: a small layer
    bidirectional: bool = False  # True: each tag also sees the days after it
    window: int = 30  # days per training sequence: about a month of weather
    stride: int = 1  # every start day: only ~1,000 training days
    train_fraction: float = 0.7
    validation_fraction: float = 0.15  # the test period is the rest
    max_rows: int = None  # keep only the first N days (tests)
    epochs: int = 60  # an upper bound: early stopping ends the runs sooner
    patience: int = 6  # epochs without validation progress before stopping (best weights kept)
    batch_size: int = 32
    learning_rate: float = 3e-3

    def __post_init__(self):
        super().__post_init__()
        for name in ("window", "stride"):
            check_positive_int(name, getattr(self, name))
        if self.max_rows is not None:
            check_positive_int("max_rows", self.max_rows)


PRESETS = {
    # Tests: the first year and a half, short windows, high learning rate; seconds.
    "tiny": dict(units=16, window=10, stride=2, max_rows=540, epochs=8, patience=8, learning_rate=1e-2),
    "default": {},
}


@dataclasses.dataclass
class Data:
    """The days split by time, as model inputs and label ids."""

    series: series_data.TimeSeries  # all days, original units and label strings
    periods: dict  # "train" | "validation" | "test" -> slice of days
    scaler: series_data.Standardizer  # fitted on the training period only
    inputs: np.ndarray  # (days, FEATURES) float32, standardized
    labels: np.ndarray  # (days,) int32 ids into CLASSES


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the model, its history and the scores of every period."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    scores: dict  # period -> {"model" | "majority" -> {"accuracy", "f1" (per class)}, "support"}
    majority: int  # the training period's most frequent label id
    seconds: float  # wall time of `train`: data, model, fit and evaluation
    data: Data


# --- data ------------------------------------------------------------------------------
def label_ids(labels):
    """(days,) label strings -> int32 ids into CLASSES."""
    index = {name: i for i, name in enumerate(CLASSES)}
    unknown = sorted(str(label) for label in set(labels) - set(index))
    if unknown:
        raise ValueError(f"Argument `labels` holds {unknown}; expected only {list(CLASSES)}.")
    return np.array([index[label] for label in labels], dtype="int32")


def day_features(series):
    """(days, FEATURES) in original units, before standardizing."""
    precipitation, temp_max, temp_min, wind = series.values.T
    # Most days have no precipitation and a few 50 mm: the log spreads out the
    # small amounts that tell drizzle from rain.
    columns = [np.log1p(precipitation), temp_max, temp_min, wind]
    seasons = series_data.cyclic_features(series_data.day_of_year(series.times), 365.25)  # (days, 2)
    return np.concatenate([np.stack(columns, axis=1), seasons], axis=1)


def prepare(series, config):
    """Split `series` by time and standardize it with the training period's statistics."""

    def too_short(period, length, span):
        return (
            f"Argument `window` ({config.window}) is longer than the {period} period: {length} days ({span}). "
            "Use a shorter --window, or more data."
        )

    features = day_features(series)
    periods, scaler = series_data.split_and_scale(
        series.times, features, config.train_fraction, config.validation_fraction, config.window, too_short
    )
    return Data(series, periods, scaler, scaler.transform(features).astype("float32"), label_ids(series.labels))


def load_data(config):
    """The Seattle weather days, split and standardized."""
    series = series_data.seattle_weather()
    if config.max_rows is not None:
        series = series.head(config.max_rows)
    return prepare(series, config)


def training_windows(data, period, window, stride):
    """(inputs, labels) windows of `period`: (count, window, features) and (count, window)."""
    days = data.periods[period]
    inputs = series_data.sliding_windows(data.inputs[days], window, stride)
    labels = series_data.sliding_windows(data.labels[days], window, stride)
    return inputs, labels


# --- model -----------------------------------------------------------------------------
def build_model(config, data=None):
    """(batch, days, features) -> logits (batch, days, classes), compiled
    (`data` is not needed: six features, five classes)."""
    layer = recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        return_sequences=True,
        name="recurrent",
        **layer_regularisation(config),
    )
    if config.bidirectional:
        layer = keras.layers.Bidirectional(layer, name="bidirectional")  # concatenates both directions
    model = keras.Sequential(
        [
            keras.Input((None, len(FEATURES)), name="measurements"),  # (batch, days, features)
            layer,  # (batch, days, units), 2 * units when bidirectional
            keras.layers.Dense(len(CLASSES), name="logits"),  # (batch, days, classes): one tag a day
        ],
        name=f"tagging_{'bi' if config.bidirectional else ''}{config.cell}",
    )
    return compile_for_classes(model, make_optimizer(config))


# --- training --------------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` on overlapping training windows; the validation period in
    windows that do not overlap, each day once."""
    x, y = training_windows(data, "train", config.window, config.stride)
    validation = training_windows(data, "validation", config.window, config.window)
    return {"x": x, "y": y, "batch_size": config.batch_size, "validation_data": validation}


def callbacks(config):
    """Keep the epoch that tags the validation days best.  Their labels follow the
    later convention (wet days "fog"), so the validation loss, which punishes
    confident "rain" hard, was lowest after 1-3 epochs.  Over seeds 0-4,
    stopping on it gave test accuracy 0.48-0.70; stopping on accuracy, 0.59-0.70."""
    return stop_early("val_accuracy", config.patience, mode="max")


def count_examples(data):
    """Scored training examples: the days of the training period."""
    days = data.periods["train"]
    return days.stop - days.start


RECIPE = Recipe.of(
    __name__,
    count_examples=count_examples,
    example_unit="training days",
    callbacks=callbacks,
)


def train(config, data=None, verbose=0):
    """Fit on the training windows with early stopping, then tag every period."""
    start = time.perf_counter()
    data, model, history = RECIPE.train_new_model(config, data, verbose=verbose)
    majority = majority_class(data)
    results = {}
    for period, days in data.periods.items():
        labels = data.labels[days]
        results[period] = {
            "model": scores(labels, tag(model, data, period)),
            "majority": scores(labels, np.full_like(labels, majority)),
            "support": np.bincount(labels, minlength=len(CLASSES)),
        }
    return TrainResult(config, model, history.history, results, majority, time.perf_counter() - start, data)


# --- evaluation ------------------------------------------------------------------------
def per_class_f1(labels, predicted, num_classes):
    """(f1, support), both (num_classes,): F1 = 2 precision recall / (precision + recall).

    A class never predicted has precision 0, one never present recall 0, and
    F1 is 0 when both are 0 (scikit-learn's zero_division=0).
    """
    labels, predicted = np.asarray(labels).ravel(), np.asarray(predicted).ravel()
    if labels.shape != predicted.shape:
        raise ValueError(
            f"Arguments `labels` and `predicted` must have the same size; received {labels.size} and {predicted.size}."
        )
    classes = np.arange(num_classes)[:, np.newaxis]  # (classes, 1)
    true_positive = np.sum((predicted == classes) & (labels == classes), axis=1)
    predicted_count = np.sum(predicted == classes, axis=1)
    support = np.sum(labels == classes, axis=1)
    precision = true_positive / np.maximum(predicted_count, 1)
    recall = true_positive / np.maximum(support, 1)
    denominator = precision + recall
    f1 = np.where(denominator > 0, 2 * precision * recall / np.where(denominator > 0, denominator, 1), 0.0)
    return f1, support


def tag(model, data, period):
    """(days,) predicted label ids of `period`, tagged in one pass over the whole period."""
    inputs = data.inputs[data.periods[period]][np.newaxis]  # (1, days, features)
    return np.argmax(model.predict(inputs, verbose=0)[0], axis=-1)


def scores(labels, predicted):
    """{"accuracy", "f1"}: per-day accuracy and per-class F1 (in CLASSES order)."""
    f1, _ = per_class_f1(labels, predicted, len(CLASSES))
    return {"accuracy": float(np.mean(labels == predicted)), "f1": f1}


def majority_class(data):
    """The baseline's label id: the most frequent of the training period, never a later one's."""
    return int(np.argmax(np.bincount(data.labels[data.periods["train"]], minlength=len(CLASSES))))


def format_report(result):
    """Accuracy of every period, then the test period's per-class F1."""
    config, data = result.config, result.data
    direction = "bidirectional " if config.bidirectional else ""
    name = f"{direction}{config.cell}{' (keras)' if config.builtin else ''} {config.units}"
    baseline = f"majority ({CLASSES[result.majority]})"
    lines = [f"seattle_weather, {len(result.history['loss'])} epochs, {result.seconds:.0f} s", ""]
    lines.append(f"{'accuracy':<26}" + "".join(f"{period:>12}" for period in series_data.PERIODS))
    for method, label in (("model", name), ("majority", baseline)):
        accuracies = [result.scores[period][method]["accuracy"] for period in series_data.PERIODS]
        lines.append(f"{label:<26}" + "".join(f"{accuracy:>12.3f}" for accuracy in accuracies))
    test = data.periods["test"]
    lines += ["", f"test F1, {data.series.times[test.start]} .. {data.series.times[test.stop - 1]}"]
    lines.append(f"{'':<26}" + "".join(f"{c:>9}" for c in CLASSES))
    for method, label in (("model", name), ("majority", baseline)):
        lines.append(f"{label:<26}" + "".join(f"{f1:>9.3f}" for f1 in result.scores["test"][method]["f1"]))
    lines.append(f"{'days':<26}" + "".join(f"{n:>9d}" for n in result.scores["test"]["support"]))
    gain = result.scores["test"]["model"]["accuracy"] - result.scores["test"]["majority"]["accuracy"]
    verdict = "above" if gain > 0 else "NOT above"
    lines.append(f"\nTest accuracy {verdict} the majority baseline ({100 * gain:+.1f} points).")
    return "\n".join(lines)


def serving_endpoints(model):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "tag": measurements
    (batch, days, FEATURES) standardized as `prepare` makes them ->
    probabilities (batch, days, CLASSES), label_id and label for every day."""
    postprocess = export.classifier_outputs(CLASSES)
    return {"tag": export.array_endpoint(model, postprocess=postprocess, input_names=["measurements"])}


def main(argv=None):
    """Train once and print the accuracy and F1 tables; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.tagging"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--bidirectional", action=argparse.BooleanOptionalAction, help="read both ways (default: the preset's)"
    )
    parser.add_argument("--window", type=int, help="days per training sequence (default: the preset's)")
    args = parser.parse_args(argv)
    with usage_errors(parser):  # bad values stop the command before any training
        config = config_from_preset(
            Config, PRESETS, args.preset, bidirectional=args.bidirectional, window=args.window, **common_overrides(args)
        )
        data = load_data(config)
    result = train(config, data, verbose=training.progress_verbosity())
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    print(format_report(result))
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.tagging"))
