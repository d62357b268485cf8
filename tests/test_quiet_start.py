"""keras_rnn_lab.quiet_start: the commands start without TensorFlow's C++ start-up
lines, real errors still print, and the lines come back when asked for.

The subprocess tests start TensorFlow several times (about 10 s each, run side
by side): marked slow.  The fast ones check the rules and the filter itself."""

import os
import subprocess
import sys

import pytest

from keras_rnn_lab import quiet_start

PYTHON = sys.executable
CONSOLE_SCRIPT = os.path.join(os.path.dirname(PYTHON), "keras-rnn-lab")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Measured on this machine class (tensorflow 2.21, CPU): what `import tensorflow` and its device probe print.
MEASURED = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796149792.920697    9082 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "I0000 00:00:1796149793.024971    9082 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
    "E0000 00:00:1796149801.361592    9082 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
]
TELLTALES = ("absl::InitializeLog", "cudart_stub.cc", "cuInit", "cpu_feature_guard.cc", "To enable the following")


@pytest.mark.parametrize(
    "orig_argv, expected",
    [
        (["python", "-m", "recipes.parity", "--preset", "tiny"], True),
        (["python", "-X", "importtime", "-W", "ignore", "-m", "tuning.search", "parity"], True),
        (["python", "-mkeras_rnn_lab.benchmark"], True),
        (["python", "-m", "pytest", "tests"], False),
        (["python", "my_program.py", "-m", "recipes.parity"], False),  # a script's own -m
        (["python", "-c", "import keras_rnn_lab"], False),
        (["python"], False),
    ],
)
def test_commands_are_told_from_programs_by_how_python_started(orig_argv, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["my_program.py"])
    assert quiet_start.is_command(orig_argv) is expected


@pytest.mark.parametrize(
    "script, expected",
    [("/venv/bin/keras-rnn-lab", True), ("/venv/Scripts/keras-rnn-lab.exe", True), ("/venv/bin/keras-rnn-lab2", False)],
)
def test_the_console_script_is_a_command(script, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", [script, "list"])  # how pip's script starts: python SCRIPT ARGS
    assert quiet_start.is_command(["/venv/bin/python", script, "list"]) is expected


@pytest.mark.parametrize(
    "argv, environment, expected",
    [
        ([], {}, True),
        (["--debug"], {}, False),
        ([], {"KERAS_RNN_LAB_DEBUG": "1"}, False),
        ([], {"KERAS_RNN_LAB_DEBUG": "0"}, True),
        ([], {"TF_CPP_MIN_LOG_LEVEL": "0"}, False),
        ([], {"TF_CPP_MIN_LOG_LEVEL": "1"}, False),
        ([], {"TF_CPP_MIN_LOG_LEVEL": "3"}, True),  # asked for fewer lines: still quiet
    ],
)
def test_the_user_gets_the_lines_back_when_asking(argv, environment, expected, monkeypatch):
    for name in ("KERAS_RNN_LAB_DEBUG", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["-m", *argv])
    assert quiet_start.wants_quiet_start(["python", "-m", "recipes.parity", *argv]) is expected


def test_start_up_notices_are_noise_and_nothing_else_is():
    assert all(quiet_start.is_noise(line) for line in MEASURED)
    genuine = [
        "E0000 00:00:1796149801.361592    9082 op_kernel.cc:1857] OP_REQUIRES failed at gather_op.cc:102",
        "Traceback (most recent call last):",
        "UserWarning: Could not find cuda drivers",  # the words alone, not TensorFlow's line
        "keras-rnn-lab: error: argument --preset: invalid choice: 'nope'",
        "Epoch 1/2",
    ]
    assert not any(quiet_start.is_noise(line) for line in genuine)


def test_the_filter_drops_the_notices_and_passes_everything_else_on_in_order(capfd):
    with quiet_start.noise_filtered():
        os.write(2, (MEASURED[0] + "\nfirst real line\n").encode())
        os.write(2, ("\n".join(MEASURED[1:]) + "\nsecond real line, no newline").encode())
        os.write(1, b"stdout is not touched\n")
    captured = capfd.readouterr()
    assert captured.err == "first real line\nsecond real line, no newline"
    assert captured.out == "stdout is not touched\n"
    os.write(2, MEASURED[0].encode() + b"\n")  # after the window: fd 2 is stderr again, nothing held
    assert capfd.readouterr().err == MEASURED[0] + "\n"


def test_a_program_importing_the_library_is_left_alone():
    assert quiet_start.quiet_start(["python", "my_program.py"]) is False
    assert quiet_start.quiet_start(["python", "-m", "recipes.parity"]) is False  # tensorflow is already imported


# --- the real commands, in subprocesses ------------------------------------------------------------------
def _environment(**settings):
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_RNN_LAB_DEBUG")}
    return {**environment, **settings}  # conftest sets TF_CPP_MIN_LOG_LEVEL=3 for the tests themselves


COMMANDS = {
    "list": ([CONSOLE_SCRIPT, "list"], {}),
    "recipe --help": ([PYTHON, "-m", "recipes.parity", "--help"], {}),
    "search --help": ([PYTHON, "-m", "tuning.search", "--help"], {}),
    "benchmark --help": ([PYTHON, "-m", "keras_rnn_lab.benchmark", "--help"], {}),
    "usage error": ([PYTHON, "-m", "recipes.parity", "--preset", "nope"], {}),
    # -X importtime: the interpreter writes a line per import to stderr, also while fd 2 is held.
    "import times": ([PYTHON, "-X", "importtime", "-m", "recipes.parity", "--help"], {}),
    # A C++ write to stderr after the start: tf.print's PrintV2 kernel writes to std::cerr.
    "after the start": (
        [
            PYTHON,
            "-c",
            "import sys; sys.orig_argv = [sys.executable, '-m', 'recipes.demo']; import keras_rnn_lab;"
            " import tensorflow as tf; tf.print('a real line from C++', output_stream=sys.stderr)",
        ],
        {},
    ),
    "level 0": ([CONSOLE_SCRIPT, "list"], {"TF_CPP_MIN_LOG_LEVEL": "0"}),
    "debug": ([CONSOLE_SCRIPT, "list"], {"KERAS_RNN_LAB_DEBUG": "1"}),
    "library": ([PYTHON, "-c", "import keras_rnn_lab"], {}),
}


@pytest.fixture(scope="module")
def finished():
    """name -> (process, stdout, stderr) of every command, four at a time (two cores, ~0.5 GB each)."""
    results, names = {}, list(COMMANDS)
    for begin in range(0, len(names), 4):
        started = {
            name: subprocess.Popen(
                COMMANDS[name][0],
                cwd=REPOSITORY,
                env=_environment(**COMMANDS[name][1]),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in names[begin : begin + 4]
        }
        results.update({name: (process, *process.communicate(timeout=300)) for name, process in started.items()})
    return results


def _noise(stderr):
    return [line for line in stderr.splitlines() if quiet_start.is_noise(line) or any(t in line for t in TELLTALES)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["list", "recipe --help", "search --help", "benchmark --help"])
def test_every_command_starts_without_tensorflows_lines(finished, name):
    process, out, err = finished[name]
    assert process.returncode == 0, err
    assert _noise(err) == [] and err == "", err
    assert out.strip()  # and said what it should


@pytest.mark.slow
def test_real_errors_and_other_stderr_lines_still_print(finished):
    process, _, err = finished["usage error"]
    assert process.returncode == 2 and "error: argument --preset: invalid choice: 'nope'" in err and not _noise(err)
    _, _, err = finished["import times"]
    imported = [line.split("|")[-1].strip() for line in err.splitlines() if line.startswith("import time:")]
    assert "tensorflow" in imported and "tensorflow.python.eager.context" in imported  # written while fd 2 was held
    assert not _noise(err)
    process, _, err = finished["after the start"]
    assert process.returncode == 0 and err == "a real line from C++\n", err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["level 0", "debug", "library"])
def test_the_lines_come_back_when_asked_for_and_in_your_own_programs(finished, name):
    process, _, err = finished[name]
    assert process.returncode == 0, err
    assert "All log messages before absl::InitializeLog() is called are written to STDERR" in err
