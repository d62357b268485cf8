"""What every recipe in `recipes/` shares: presets, the recurrent layer choice,
the command line and the training call.  Recipes call these; none copies them.

A recipe module defines a `Config` dataclass, `PRESETS = {"tiny": {...},
"default": {...}}` (plain dicts of overrides), `load_data(config)`,
`build_model(config)`, `train(config)` and `main(argv=None)`.
"""

import argparse
import contextlib
import dataclasses

import keras

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


def config_from_preset(config_class, presets, preset, **overrides):
    """`config_class` with `presets[preset]` applied, then non-None `overrides`."""
    if preset not in presets:
        raise ValueError(f"Argument `preset` must be one of {sorted(presets)}; received {preset!r}.")
    fields = {f.name for f in dataclasses.fields(config_class)}
    values = {**presets[preset], **{k: v for k, v in overrides.items() if v is not None}}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"Unknown {config_class.__name__} fields {unknown}; expected some of {sorted(fields)}.")
    return config_class(**values)


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
    parser.add_argument("--out", type=keras_path, help="save the trained model (.keras) here")
    return parser


def common_overrides(args):
    """The common flags as Config overrides (None = keep the preset's).

    Every recipe's Config has these fields: cell, units, epochs, batch_size,
    learning_rate, seed and builtin.
    """
    names = ("cell", "units", "epochs", "batch_size", "learning_rate", "seed", "builtin")
    return {name: getattr(args, name) for name in names}


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


def stop_early(monitor="val_loss", patience=3, reduce_lr_patience=None, mode="auto"):
    """The lecture's "train several epochs" with a stop: callbacks that end
    training when `monitor` stops improving for `patience` epochs and keep the
    best epoch's weights; with `reduce_lr_patience`, first divide the learning
    rate by ~3 after that many flat epochs (a smaller step often finds more)."""
    callbacks = []
    if reduce_lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.3, patience=reduce_lr_patience)
        )
    callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True))
    return callbacks


def compile_for_classes(model, learning_rate, clipnorm=None):
    """Adam and sparse categorical cross-entropy on logits, with accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
