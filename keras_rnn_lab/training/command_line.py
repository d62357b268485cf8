"""The command line every recipe shares: the common flags (same meaning in every
recipe), argparse types that say what arrived, bad values as usage errors
(exit 2) before any training starts, and `run_command`, which every entry
point runs its `main` through so that a user's mistake is one or two lines,
never a traceback (keras_rnn_lab.errors)."""

import argparse
import ast
import contextlib
import math
import sys
import traceback

from keras_rnn_lab._validation import MAX_SEED
from keras_rnn_lab.errors import UsageError, UserError, first_line
from keras_rnn_lab.layers import RECURRENT_LAYERS
from keras_rnn_lab.output_paths import check_writable_parent
from keras_rnn_lab.quiet_start import DEBUG_VARIABLE, debug_wanted

_TYPED_AS = []  # how the user typed the running command, innermost last (see `program`)
_DEBUG = [False]  # whether the running command asked for tracebacks (run_command sets it)


@contextlib.contextmanager
def typed_as(label):
    """Inside it, `program(...)` is `label`: `keras-rnn-lab train parity` names
    its usage errors as typed, not as `python -m recipes.parity`."""
    _TYPED_AS.append(label)
    try:
        yield label
    except Exception as error:
        if not hasattr(error, "command"):
            error.command = label  # run_command names the command the error came from
        raise
    finally:
        _TYPED_AS.pop()


def program(default):
    """The command's name for argparse's `prog` and for error lines: as typed
    (`typed_as`), else `default` (e.g. "python -m recipes.parity export")."""
    return _TYPED_AS[-1] if _TYPED_AS else default


def debugging(argv):
    """(whether tracebacks are wanted: --debug or KERAS_RNN_LAB_DEBUG=1, argv without --debug)."""
    return debug_wanted(argv), [a for a in argv if a != "--debug"]


def debug_requested():
    """Whether the running command asked for tracebacks and whole messages
    (--debug, or KERAS_RNN_LAB_DEBUG=1 in the environment)."""
    return _DEBUG[0] or debugging([])[0]


def run_command(main, label, argv=None):
    """Run `main(argv)` as a command and return its exit status: 0, or a
    UserError's (2 usage, 1 runtime) printed as `LABEL: error: MESSAGE`;
    argparse's own exits pass through.  Any other exception is printed as
    one line too, with how to see its traceback (--debug)."""
    debug, argv = debugging(sys.argv[1:] if argv is None else list(argv))
    _DEBUG[:] = [debug]  # for usage_errors, which turns errors into argparse's exit
    label = program(label)
    try:
        main(argv)
    except SystemExit as exit:  # argparse's usage errors (2) and --help (0)
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except UserError as error:
        if debug:
            traceback.print_exc()
        print(f"{getattr(error, 'command', label)}: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        label = getattr(error, "command", label)
        print(f"{label}: error: {_describe(error)}", file=sys.stderr)
        print(f"{label}: (rerun with --debug, or {DEBUG_VARIABLE}=1, for the traceback)", file=sys.stderr)
        return 1
    return 0


def _describe(error):
    """One line for an exception nobody turned into a UserError."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {error.filename!r}"
    return f"{type(error).__name__}: {first_line(error) if str(error).strip() else 'no message'}"


def progress_verbosity(verbose=None, stream=None):
    """`model.fit`'s `verbose` for a command: `verbose` when given (0, 1 or 2);
    else Keras's progress bar (1) when `stream` (default stdout) is a terminal
    or a notebook, and one line per epoch (2) otherwise.

    Not Keras's "auto": Keras 3 makes that 1 everywhere, and its bar treats every
    POSIX system as a live display, so into a pipe or a log file it writes each
    redraw (carriage returns and colour codes, some 20 a second) instead of a line."""
    if verbose is not None:
        return verbose
    stream = sys.stdout if stream is None else stream
    try:
        terminal = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        terminal = False
    return 1 if terminal or "ipykernel" in sys.modules else 2


def add_common_arguments(parser, presets):
    """The flags every recipe accepts, with the same meaning everywhere."""
    parser.add_argument("--preset", default="default", choices=sorted(presets), help="named configuration")
    parser.add_argument("--cell", choices=sorted(RECURRENT_LAYERS), help="recurrent cell (default: the preset's)")
    parser.add_argument("--units", type=positive_int, help="recurrent units")
    parser.add_argument("--epochs", type=positive_int, help="training epochs")
    parser.add_argument("--batch-size", dest="batch_size", type=positive_int, help="batch size")
    parser.add_argument("--learning-rate", dest="learning_rate", type=positive_float, help="Adam learning rate")
    parser.add_argument("--seed", type=seed, help="random seed (weights, data order, sampling)")
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
    """argparse type: a finite number > 0, or a usage error saying what arrived."""
    return _positive(text, float, "a finite positive number")


def seed(text):
    """argparse type: an int in [0, 2**32 - 1] (what NumPy and TensorFlow accept)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an int in [0, 2**32 - 1]; received {text!r}")
    return value


def _positive(text, kind, expected):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}")
    return value


def keras_path(text):
    """argparse type: a path ending in .keras (Keras's saving format) that can
    be written (missing directories are created when the model is saved):
    checked now, before any training, not after it."""
    if not text.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .keras; received {text!r}")
    try:
        check_writable_parent(text, "--out")
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("argument --out: ")) from None
    return text


@contextlib.contextmanager
def usage_errors(parser):
    """Inside it, a ValueError/TypeError (a bad Config value, a bad data file)
    becomes the command's usage error (exit 2) before any training starts."""
    try:
        yield
    except (TypeError, ValueError) as error:
        if _DEBUG[0]:
            traceback.print_exc()  # --debug: where it came from, then the usage error
        parser.error(str(error))


def comma_list(kind=str, choices=None, minimum=None, distinct=False, example=None):
    """argparse type for a comma-separated list: "0,1,2" -> [0, 1, 2].

    Each item is converted by `kind` (str, int, float; non-finite floats are refused) and must be one of
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
        if any(isinstance(value, float) and not math.isfinite(value) for value in values):
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
