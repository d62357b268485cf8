"""The errors a user can fix, and how every command reports them.

A command (`keras-rnn-lab ...`, `python -m recipes.NAME`, `python -m
tuning.search`, `python -m keras_rnn_lab.benchmark`) answers a problem the
user can fix with one or two lines naming the thing (argument, file, model,
run directory), what arrived and what was expected, and an exit status:

    UsageError  2   a bad argument, input file or model file: nothing was started
    RunError    1   the run itself cannot go on (a locked or damaged run
                    directory, a diverged fit, an unreachable peer)

Both are raised by the library (with the message ready) and printed by
`keras_rnn_lab.training.command_line.run_command` without a traceback;
`--debug` or KERAS_RNN_LAB_DEBUG=1 shows the traceback too.  UsageError is
also a ValueError, so code that catches bad values keeps catching it.
"""


class UserError(Exception):
    """A problem the user can fix; `str(error)` is the whole message."""

    exit_status = 1


class UsageError(UserError, ValueError):
    """A bad argument, input file or model file (exit status 2, like argparse's)."""

    exit_status = 2


def first_line(error):
    """The first line of an exception's message (its type's name when it has none):
    what a one-line answer quotes of an error raised by Keras, h5py or the OS."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RunError(UserError, RuntimeError):
    """The run cannot go on: locked or damaged run directory, NaN loss, peers unreachable (exit status 1)."""

    exit_status = 1
