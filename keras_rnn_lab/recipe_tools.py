"""What every recipe in `recipes/` shares: presets, the recurrent layer choice,
the command line and the training call.  Recipes call these; none copies them.

A recipe module defines a `Config` dataclass, `PRESETS = {"tiny": {...},
"default": {...}}` (plain dicts of overrides), `load_data(config)`,
`build_model(config)`, `train(config)` and `main(argv=None)`.
"""

import argparse
import ast
import contextlib
import dataclasses
import math
import numbers

import keras
import numpy as np

from keras_rnn_lab import runs

# Argument checks recipes share with the layers (errors name the argument).
from keras_rnn_lab._validation import check_positive_int, check_rate  # noqa: F401  (re-exported)
from keras_rnn_lab.gru import GRU
from keras_rnn_lab.lstm import LSTM
from keras_rnn_lab.simple_rnn import SimpleRNN

RECURRENT_LAYERS = {"lstm": LSTM, "gru": GRU, "simple_rnn": SimpleRNN}


def recurrent_layer(cell, units, builtin=False, **kwargs):
    """Our fast layer for `cell` ("lstm", "gru" or "simple_rnn"), or with
    `builtin=True` Keras's layer of the same name (for side-by-side runs)."""
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"Argument `cell` must be one of {sorted(RECURRENT_LAYERS)}; received {cell!r}.")
    layer_class = RECURRENT_LAYERS[cell]
    if builtin:
        layer_class = getattr(keras.layers, layer_class.__name__)
    return layer_class(units, **kwargs)


def config_from_preset(config_class, presets, preset, settings=None, **overrides):
    """`config_class` with `presets[preset]` applied, then `settings` (a dict of
    any fields, from `--set key=value`), then the non-None `overrides` (flags)."""
    if preset not in presets:
        raise ValueError(f"Argument `preset` must be one of {sorted(presets)}; received {preset!r}.")
    fields = {f.name for f in dataclasses.fields(config_class)}
    flags = {k: v for k, v in overrides.items() if v is not None}
    values = {**presets[preset], **(settings or {}), **flags}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"Unknown {config_class.__name__} fields {unknown}; expected some of {sorted(fields)}.")
    config = config_class(**values)
    runs.record_config(config)  # into the active run directory's config.json, if any
    return config


def add_common_arguments(parser, presets):
    """The flags every recipe accepts, with the same meaning everywhere."""
    parser.add_argument("--preset", default="default", choices=sorted(presets), help="named configuration")
    parser.add_argument("--cell", choices=sorted(RECURRENT_LAYERS), help="recurrent cell (default: the preset's)")
    parser.add_argument("--units", type=positive_int, help="recurrent units")
    parser.add_argument("--epochs", type=positive_int, help="training epochs")
    parser.add_argument("--batch-size", dest="batch_size", type=positive_int, help="batch size")
    parser.add_argument("--learning-rate", dest="learning_rate", type=positive_float, help="Adam learning rate")
    parser.add_argument("--seed", type=int, help="random seed (weights, data order, sampling)")
    parser.add_argument(
        "--builtin", action="store_true", default=None, help="use Keras's built-in layer instead of ours (comparisons)"
    )
    clipping = parser.add_mutually_exclusive_group()  # Keras's optimizers take one of the two
    clipping.add_argument(
        "--clipnorm", type=positive_float, help="clip each weight's gradient to this L2 norm (exploding gradients)"
    )
    clipping.add_argument("--clipvalue", type=positive_float, help="clip every gradient entry to [-v, v]")
    parser.add_argument("--out", type=keras_path, help="save the trained model (.keras) here")
    parser.add_argument(
        "--set",
        dest="settings",
        type=setting,
        action="append",
        metavar="KEY=VALUE",
        help="any Config field, e.g. --set dropout=0.2 --set filters=(8,16) (repeatable; flags win)",
    )
    return parser


def setting(text):
    """argparse type for --set: "key=value" -> (key, value), the value read as a
    Python literal (0.2, True, (8, 16), None) or else kept as a string (gru)."""
    key, separator, raw = text.partition("=")
    if not separator or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Config field name; received {text!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def common_overrides(args):
    """The common flags as Config overrides (None = keep the preset's).

    Every recipe's Config has these fields: cell, units, epochs, batch_size,
    learning_rate, seed, builtin, clipnorm and clipvalue.
    """
    names = ("cell", "units", "epochs", "batch_size", "learning_rate", "seed", "builtin", "clipnorm", "clipvalue")
    overrides = {name: getattr(args, name) for name in names}
    overrides["settings"] = dict(getattr(args, "settings", None) or [])  # --set key=value, for config_from_preset
    return overrides


def positive_int(text):
    """argparse type: a positive int, or a usage error saying what arrived."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int; received {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive int; received {text!r}")
    return value


def keras_path(text):
    """argparse type: a path ending in .keras (Keras's saving format)."""
    if not text.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .keras; received {text!r}")
    return text


@contextlib.contextmanager
def usage_errors(parser):
    """Inside it, a ValueError/TypeError (a bad Config value, a bad data file)
    becomes the command's usage error (exit 2) before any training starts."""
    try:
        yield
    except (TypeError, ValueError) as error:
        parser.error(str(error))


def positive_float(text):
    """argparse type: a number > 0, or a usage error saying what arrived."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number; received {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number; received {text!r}")
    return value


def stop_early(monitor="val_loss", patience=3, reduce_lr_patience=None, mode="auto", min_delta=0.0, stop_at=None):
    """The lecture's "train several epochs" with a stop: callbacks that end
    training when `monitor` stops improving (by more than `min_delta`) for
    `patience` epochs and keep the best epoch's weights; with
    `reduce_lr_patience`, first divide the learning rate by ~3 after that many
    flat epochs (a smaller step often finds more); with `stop_at`, also stop as
    soon as `monitor` reaches that value (a task solved needs no more epochs).
    A batch whose loss is NaN or infinite (exploding gradients) ends training
    at once (`TerminateOnNaN`); the best epoch's weights are still restored."""
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if reduce_lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.3, patience=reduce_lr_patience)
        )
    early = keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=patience, min_delta=min_delta, restore_best_weights=True
    )
    callbacks.append(early)
    if stop_at is not None:
        callbacks.append(StopAt(monitor, stop_at, mode=mode))
    # Inside an active run directory (keras-rnn-lab train --run-dir), every fit
    # also checkpoints, logs and can resume; first, so a restored epoch counts.
    return runs.active_callbacks(monitor, mode) + callbacks


class StopAt(keras.callbacks.Callback):
    """Stops training after the first epoch whose `monitor` reaches `value`
    (mode "max": >= value; "min": <=; "auto": "max" for accuracies, else "min")."""

    def __init__(self, monitor, value, mode="auto"):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Argument `mode` must be 'auto', 'min' or 'max'; received {mode!r}.")
        self.monitor, self.value = monitor, float(value)
        self.higher_is_better = mode == "max" or (mode == "auto" and "acc" in monitor)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if (current >= self.value) if self.higher_is_better else (current <= self.value):
            self.model.stop_training = True


# Optimizers a Config's `optimizer` field may name (Adam when it has none).
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}


def check_clip(name, value):
    """A clipping threshold: None (no clipping) or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be None or a positive float; received {value!r} of type {type(value).__name__}."
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Argument `{name}` must be None or a finite float > 0; received {value!r}.")
    return float(value)


def make_optimizer(config):
    """The optimizer a recipe's Config asks for: `config.optimizer` ("adam", the
    default when the Config has no such field, or "sgd") at `config.learning_rate`,
    with gradient clipping from `config.clipnorm` (each weight's gradient scaled
    down to at most this L2 norm) or `config.clipvalue` (each entry clipped to
    [-v, v]; one of the two at most); None turns it off.  Clipping bounds the
    step an exploding gradient takes; it cannot rescue a forward pass that is
    already infinite."""
    name = getattr(config, "optimizer", "adam")
    if name not in OPTIMIZERS:
        raise ValueError(f"Argument `optimizer` must be one of {sorted(OPTIMIZERS)}; received {name!r}.")
    rate = config.learning_rate
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"Argument `learning_rate` must be a positive float; received {rate!r} of type {type(rate).__name__}."
        )
    if not rate > 0:
        raise ValueError(f"Argument `learning_rate` must be a positive float; received {rate!r}.")
    clipnorm, clipvalue = check_clipping(getattr(config, "clipnorm", None), getattr(config, "clipvalue", None))
    return OPTIMIZERS[name](float(rate), clipnorm=clipnorm, clipvalue=clipvalue)


def check_clipping(clipnorm, clipvalue):
    """(clipnorm, clipvalue), each None or a finite float > 0, and not both set
    (Keras optimizers take one)."""
    clipnorm, clipvalue = check_clip("clipnorm", clipnorm), check_clip("clipvalue", clipvalue)
    if clipnorm is not None and clipvalue is not None:
        raise ValueError(
            f"Pass one of `clipnorm` and `clipvalue`, not both; received clipnorm={clipnorm!r}, "
            f"clipvalue={clipvalue!r}."
        )
    return clipnorm, clipvalue


def compile_for_classes(model, optimizer, clipnorm=None):
    """Sparse categorical cross-entropy on logits, with accuracy.

    `optimizer`: an optimizer (recipes pass `make_optimizer(config)`, which
    carries the Config's clipping), or a learning rate for Adam clipped at
    `clipnorm`.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = keras.optimizers.Adam(optimizer, clipnorm=check_clip("clipnorm", clipnorm))
    elif clipnorm is not None:
        raise ValueError(
            f"Pass `clipnorm` in the optimizer, not beside it; received clipnorm={clipnorm!r} and {optimizer!r}."
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# --- the lecture's initialisation and the LSTM forget-gate bias -----------------
@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class ForgetGateBias(keras.initializers.Initializer):
    """An LSTM bias (4*units,) of zeros with `value` in the forget-gate block
    (Keras's gate order i, f, c, o), so f_t = sigma(... + value) starts near
    sigma(value): 1 -> 0.73, 2 -> 0.88, 3 -> 0.95 of the memory kept per step."""

    def __init__(self, value=1.0):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"Argument `value` must be a finite number; received {value!r}.")
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        if len(shape) != 1 or shape[0] % 4:
            raise ValueError(
                f"ForgetGateBias initializes an LSTM bias of shape (4*units,); received shape {tuple(shape)}."
            )
        units = shape[0] // 4
        bias = np.zeros(shape, dtype="float32")
        bias[units : 2 * units] = self.value
        return keras.ops.convert_to_tensor(bias, dtype=dtype or "float32")

    def get_config(self):
        return {"value": self.value}


# The lecture's demo draws every weight from a normal distribution of scale 0.1.
LECTURE_STDDEV = 0.1
INITIALISATIONS = ("lecture", "keras")


def initialisation(cell, scheme="keras", forget_bias=None, seed=None):
    """Keyword arguments for `recurrent_layer` that set its initial weights.

    scheme "lecture": kernel and recurrent kernel from N(0, 0.1), biases 0;
    "keras": Keras's defaults (Glorot-uniform kernel, orthogonal recurrent
    kernel, zero biases).  `forget_bias` (LSTM only) starts the forget gate's
    bias there (None: Keras's unit_forget_bias, i.e. 1).
    """
    if scheme not in INITIALISATIONS:
        raise ValueError(f"Argument `scheme` must be one of {INITIALISATIONS}; received {scheme!r}.")
    kwargs = {}
    if scheme == "lecture":
        seeds = (None, None) if seed is None else (seed, seed + 1)
        kwargs["kernel_initializer"] = keras.initializers.RandomNormal(stddev=LECTURE_STDDEV, seed=seeds[0])
        kwargs["recurrent_initializer"] = keras.initializers.RandomNormal(stddev=LECTURE_STDDEV, seed=seeds[1])
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(
                f"Argument `forget_bias` applies to the LSTM only; received cell={cell!r}, forget_bias={forget_bias!r}."
            )
        kwargs["unit_forget_bias"] = False
        kwargs["bias_initializer"] = ForgetGateBias(forget_bias)
    return kwargs


# --- truncated backpropagation through time --------------------------------------
def stream_windows(sequence, window, batch_size):
    """A long sequence laid out for truncated BPTT: (inputs, targets), each
    (windows, batch_size, window), where row b of window i continues row b of
    window i - 1.

    The sequence is cut into `batch_size` contiguous streams; window i holds
    the i-th `window` steps of every stream, and the target is the next step.
    A stateful layer fed the windows in order carries each stream's state from
    one window to the next, while each training step's gradient stops at its
    window's start.  The tail that does not fill a window is dropped.
    """
    window, batch_size = check_positive_int("window", window), check_positive_int("batch_size", batch_size)
    sequence = np.asarray(sequence)
    per_stream = (len(sequence) - 1) // batch_size  # steps with a next step to predict
    windows = per_stream // window
    if windows == 0:
        raise ValueError(
            f"A sequence of {len(sequence)} steps is too short for `batch_size`={batch_size} streams of at least "
            f"`window`={window} steps plus a target; expected at least {batch_size * window + 1}."
        )
    used = windows * window
    starts = np.arange(batch_size)[:, None] * per_stream + np.arange(used)[None, :]  # (batch, used)
    inputs, targets = sequence[starts], sequence[starts + 1]

    def by_window(x):  # (batch, windows * window) -> (windows, batch, window)
        return x.reshape(batch_size, windows, window).transpose(1, 0, 2)

    return by_window(inputs), by_window(targets)


def recurrent_layers(layer):
    """Every `keras.layers.RNN` in `layer`: itself, inside nested models and
    inside wrappers (Bidirectional's two directions, TimeDistributed's layer)."""
    if isinstance(layer, keras.layers.RNN):
        return [layer]
    children = list(getattr(layer, "layers", None) or [])  # models
    children += [getattr(layer, name) for name in ("forward_layer", "backward_layer", "layer") if hasattr(layer, name)]
    return [rnn for child in children if isinstance(child, keras.layers.Layer) for rnn in recurrent_layers(child)]


class ResetStates(keras.callbacks.Callback):
    """Zeroes every stateful recurrent layer's state at the start of each epoch
    and of each evaluation, so no state crosses from one pass over the streams
    (or from training into validation) to the next.  Layers inside
    Bidirectional and nested models count too."""

    def _reset(self):
        for layer in recurrent_layers(self.model):
            if layer.stateful:
                layer.reset_states()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()
