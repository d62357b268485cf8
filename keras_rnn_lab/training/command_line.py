"""The command line every recipe shares: the common flags (same meaning in every
recipe), argparse types that say what arrived, and bad values as usage errors
(exit 2) before any training starts."""

import argparse
import ast
import contextlib

from keras_rnn_lab.layers import RECURRENT_LAYERS


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
    return _positive(text, int, "a positive int")


def positive_float(text):
    """argparse type: a number > 0, or a usage error saying what arrived."""
    return _positive(text, float, "a positive number")


def _positive(text, kind, expected):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}")
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


def comma_list(kind=str, choices=None, minimum=None, distinct=False, example=None):
    """argparse type for a comma-separated list: "0,1,2" -> [0, 1, 2].

    Each item is converted by `kind` (str, int, float) and must be one of
    `choices` (when given) and >= `minimum` (when given); `distinct` forbids
    repeats.  Anything else is a usage error saying what was expected, with
    `example` (e.g. "0,1,2") as the model to follow.
    """
    described = {str: "values", int: "ints", float: "numbers"}.get(kind, kind.__name__)
    if choices is not None:
        described = f"values from {list(choices)}"
    elif minimum is not None:
        described = {0: f"{described} >= 0", 1: f"positive {described}"}.get(minimum, f"{described} >= {minimum}")
    expected = f"expected comma-separated {'distinct ' if distinct else ''}{described}"
    if example:
        expected += f" such as {example}"

    def parse(text):
        try:
            values = [kind(part.strip()) for part in text.split(",")]  # an empty item is not a value
        except ValueError:
            values = []
        ok = (
            bool(values)
            and (choices is None or all(value in choices for value in values))
            and (minimum is None or all(value >= minimum for value in values))
            and (not distinct or len(set(values)) == len(values))
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"{expected}; received {text!r}")
        return values

    return parse
