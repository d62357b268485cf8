"""PyTorch as a benchmark candidate timed in a separate process (`torch_worker`).

In one process, PyTorch's OpenMP threads spin-wait after each op and take the
two cores from the TensorFlow op that runs next (the built-in SimpleRNN
measured 19-21 ms instead of 14-16 ms that way), while making them wait
passively slows torch ~2x.  In its own process torch keeps its own settings,
and the benchmark still interleaves it with the TensorFlow candidates, call
for call, pausing `SPIN_SECONDS` after each torch call so its spinning threads
are asleep before TensorFlow's next timing.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from keras_rnn_lab.benchmark.timing import SelfTimed

# Long enough for PyTorch's spinning OpenMP threads to go to sleep.
SPIN_SECONDS = 1.0
WORKER = pathlib.Path(__file__).with_name("torch_worker.py")


def torch_available():
    """Whether torch is installed, without importing it into this (TensorFlow's) process."""
    return importlib.util.find_spec("torch") is not None


class TorchPeer:
    """A running `torch_worker`; `with TorchPeer() as peer:` stops it at the end."""

    def __init__(self, spin_seconds=SPIN_SECONDS):
        self.spin_seconds = spin_seconds
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.folder = tempfile.TemporaryDirectory(prefix="keras_rnn_lab_torch_")

    def _ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker ({WORKER.name}) exited with code {self.process.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the PyTorch worker failed: {reply['error']}")
        return reply

    def setup(self, cell, x, y):
        """torch.nn's layer for `cell` over the arrays x, y (the TensorFlow candidates' own)."""
        paths = [os.path.join(self.folder.name, name) for name in ("x.npy", "y.npy")]
        for path, array in zip(paths, (x, y)):
            np.save(path, np.asarray(array, np.float32))
        return self._ask(op="setup", cell=cell, x=paths[0], y=paths[1])  # {"torch": version, "threads": n}

    def timer(self, mode):
        """A candidate for `timing.interleaved_samples`: one `mode` call, timed in the worker."""
        return SelfTimed(lambda: self._ask(op="time", mode=mode, calls=1)["seconds"][0], self.spin_seconds)

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        self.folder.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
