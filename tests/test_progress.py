"""training.progress_verbosity: Keras's progress bar on a terminal, one line per
epoch into a pipe or a file (what the commands pass to `model.fit`)."""

import io
import os
import pty
import re
import select
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_rnn_lab.training import progress_verbosity

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH_LINE = re.compile(r"^(\d+)/\1 - \d+s - \d+m?s/step - .*loss: ")  # Keras's verbose=2 line


class Stream(io.StringIO):
    """stdout that is a terminal, or not."""

    def __init__(self, terminal):
        super().__init__()
        self.terminal = terminal

    def isatty(self):
        return self.terminal


def test_a_terminal_gets_the_bar_anything_else_a_line_per_epoch():
    assert progress_verbosity(stream=Stream(True)) == 1
    assert progress_verbosity(stream=Stream(False)) == 2
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    assert progress_verbosity(stream=closed) == 2 and progress_verbosity(stream=object()) == 2
    assert [progress_verbosity(v, Stream(True)) for v in (0, 1, 2)] == [0, 1, 2]  # a --verbose given wins


def fit_two_epochs(verbose, monkeypatch, terminal):
    """Fit a tiny model for two epochs of 8 batches, printing into a stdout that is a terminal or not."""
    stream = Stream(terminal)
    monkeypatch.setattr(sys, "stdout", stream)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((64, 3)), np.zeros((64, 1)), batch_size=8, epochs=2, verbose=verbose)
    return stream.getvalue()


def test_into_a_pipe_each_epoch_is_one_line(monkeypatch):
    out = fit_two_epochs(progress_verbosity(stream=Stream(False)), monkeypatch, terminal=False)
    lines = out.splitlines()
    assert lines[0::2] == ["Epoch 1/2", "Epoch 2/2"]
    assert len(lines) == 4 and all(EPOCH_LINE.match(line) for line in lines[1::2]), out
    assert "\r" not in out and "\x1b[" not in out


def test_on_a_terminal_keras_draws_its_bar(monkeypatch):
    out = fit_two_epochs(progress_verbosity(stream=Stream(True)), monkeypatch, terminal=True)
    assert "\r" in out and "━" in out and "\x1b[" in out  # redrawn in place, in colour


def test_keras_auto_would_write_the_bar_into_a_pipe(monkeypatch):
    """Why the commands do not pass "auto": Keras 3 makes it 1 whatever stdout is,
    and its bar counts every POSIX system as a live display."""
    out = fit_two_epochs("auto", monkeypatch, terminal=False)
    assert "\r" in out and "\x1b[" in out


# --- a real command, through a pipe and on a pseudo-terminal ------------------------------------------
COMMAND = [sys.executable, "-m", "recipes.parity", "--preset", "tiny", "--epochs", "2"]


def run_on_a_terminal(command):
    """(exit status, everything written) of `command` with stdout and stderr on a pseudo-terminal."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(command, cwd=REPOSITORY, stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL)
    os.close(secondary)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(main)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", errors="replace")


@pytest.mark.slow  # a parity run, twice: about 15 s each
def test_a_command_prints_a_line_per_epoch_into_a_pipe_and_the_bar_on_a_terminal():
    piped = subprocess.run(COMMAND, cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[:4:2] == ["Epoch 1/2", "Epoch 2/2"] and all(EPOCH_LINE.match(line) for line in lines[1:4:2])
    assert "\r" not in piped.stdout and "\x1b[" not in piped.stdout
    status, written = run_on_a_terminal(COMMAND)
    assert status == 0, written
    assert "Epoch 1/2" in written and "━" in written and "\x1b[1m" in written  # the bar (only verbose=1 draws one)
