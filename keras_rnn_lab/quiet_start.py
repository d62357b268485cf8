"""A quiet start for the project's commands: TensorFlow's C++ start-up lines hidden, real errors kept.

On a CPU machine `import tensorflow` and its first look at the devices write
these to stderr before a command says anything (tensorflow 2.21, measured):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    I0000 00:00:... cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU ...
    To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with ...
    E0000 00:00:... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...

TF_CPP_MIN_LOG_LEVEL=2 drops the INFO lines absl logs, but not the first two
(written before absl logging starts, twice: they come back at any level) nor
the cuInit ERROR; level 3 would drop it, and every later C++ error with it.
So `quiet_start()` points file descriptor 2 at a temporary file while
tensorflow is imported and lists its devices (the cuInit line comes then; the
runtime itself is not started, so distribution strategies and device settings
can still be configured), puts fd 2 back and writes out again every line that
is not one of those notices (`is_noise`): a Python warning or a real error
printed during the import still shows.  After that stderr is untouched, with
TF_CPP_MIN_LOG_LEVEL=2 (unless set already): TensorFlow's errors later in the
run print as always.  Python's `sys.stderr` cannot do this: the lines are
written by C++ straight to fd 2.

Who gets it: the commands only.  `keras_rnn_lab/__init__.py` calls it first
thing, because every entry point imports the package before anything else:
the console script before `cli.py`'s body runs, `python -m recipes.NAME` and
`python -m tuning.search` through their packages' `__init__`, which import
keras_rnn_lab first, and `python -m keras_rnn_lab.benchmark` itself.  It acts
only when the process is one of this project's commands, as `sys.orig_argv`
shows: the `keras-rnn-lab` console script, or `python -m` of a module in
recipes, tuning or keras_rnn_lab.  A program of yours that
imports keras_rnn_lab keeps TensorFlow's output exactly as TensorFlow writes
it: on a machine meant to have a GPU, "failed call to cuInit" is news, and a
library should not hide it behind your back.

The lines come back (nothing is filtered, TF_CPP_MIN_LOG_LEVEL is left alone)
with --debug or KERAS_RNN_LAB_DEBUG=1 (which also show tracebacks), or with a
TF_CPP_MIN_LOG_LEVEL of 0 or 1 set yourself: you asked for TensorFlow's INFO
or WARNING lines.  A level of 2 or 3 you set is kept, and the start stays quiet.
"""

import contextlib
import os
import re
import sys
import tempfile

DEBUG_VARIABLE = "KERAS_RNN_LAB_DEBUG"  # =1: TensorFlow's start-up lines and tracebacks, like --debug
LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"  # C++ errors still print; INFO and WARNING lines do not
COMMAND_PACKAGES = ("recipes", "tuning", "keras_rnn_lab")  # `python -m` of these is one of our commands
CONSOLE_SCRIPT = "keras-rnn-lab"

# TensorFlow's start-up notices, matched on their message (timestamps, thread ids and line numbers vary).
NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        r"^[IWE]\d{4} .*\] Could not find cuda drivers on your machine, GPU will not be used\.$",
        r"^[IWE]\d{4} .*\] failed call to cuInit: ",
        r"^[IWE]\d{4} .*\] This TensorFlow binary is optimized to use available CPU instructions",
        r"^To enable the following instructions: .*, in other operations, rebuild TensorFlow with",
        r"^[IWE]\d{4} .*\] oneDNN custom operations are on\.",
        r"^[IWE]\d{4} .*\] Unable to register cu(DNN|FFT|BLAS) factory: ",
    )
)


def debug_wanted(argv):
    """Whether the command asked for tracebacks and TensorFlow's own output:
    --debug among `argv`, or KERAS_RNN_LAB_DEBUG set to anything but 0/false/no."""
    value = os.environ.get(DEBUG_VARIABLE, "").strip().lower()
    return "--debug" in argv or value not in ("", "0", "false", "no")


def main_module(orig_argv):
    """MODULE of `python [options] -m MODULE ...` (Python's own command line), else None."""
    arguments = iter(orig_argv[1:])
    for argument in arguments:
        if argument == "-m":
            return next(arguments, None)
        if argument.startswith("-m") and not argument.startswith("--"):
            return argument[2:]
        if argument in ("-W", "-X", "--check-hash-based-pycs"):  # options that take a separate value
            next(arguments, None)
        elif argument == "-c" or not argument.startswith("-"):  # code or a script: no module
            return None
    return None


def is_command(orig_argv=None):
    """Whether this process is one of the project's commands (see the module docstring)."""
    orig_argv = list(getattr(sys, "orig_argv", sys.argv) if orig_argv is None else orig_argv)
    module = main_module(orig_argv)
    if module is not None:
        return module.split(".")[0] in COMMAND_PACKAGES
    script = os.path.basename(sys.argv[0]) if sys.argv else ""  # the console script, as pip wrote it
    return script in (CONSOLE_SCRIPT, f"{CONSOLE_SCRIPT}.exe", f"{CONSOLE_SCRIPT}-script.py")  # POSIX, Windows


def is_noise(line):
    """Whether `line` (text, no newline needed) is one of TensorFlow's start-up notices."""
    line = line.rstrip("\r\n")
    return any(pattern.search(line) for pattern in NOISE)


@contextlib.contextmanager
def noise_filtered():
    """Inside it, what is written to file descriptor 2 (C++, C or Python) is held;
    at the end, every held line that is not start-up noise is written to fd 2,
    in order.  Does nothing when there is no fd 2 to redirect."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()  # Python's own writes of the window belong in `held` too
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True) if not is_noise(_text(line)))
            while kept:
                kept = kept[os.write(2, kept) :]  # os.write may take part of it


def _text(line):
    return line.decode("utf-8", errors="replace")


def wants_quiet_start(orig_argv=None):
    """Whether this process is one of the commands and its user did not ask for
    TensorFlow's lines (--debug, KERAS_RNN_LAB_DEBUG=1, TF_CPP_MIN_LOG_LEVEL 0 or 1)."""
    if not is_command(orig_argv) or debug_wanted(sys.argv[1:]):
        return False
    return os.environ.get(LEVEL_VARIABLE, "").strip() not in ("0", "1")


def quiet_start(orig_argv=None):
    """Import tensorflow without its start-up lines if `wants_quiet_start` (see the
    module docstring); True when it did, False when it left everything as it was
    (also when tensorflow was imported already)."""
    if "tensorflow" in sys.modules or not wants_quiet_start(orig_argv):
        return False
    os.environ.setdefault(LEVEL_VARIABLE, QUIET_LEVEL)  # read once, when tensorflow loads
    with noise_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA's probe (cuInit) runs here, not at import
    return True
