"""PyTorch's side of the benchmark, in a process of its own.

Started by `torch_peer.TorchPeer` *by path* (not with -m), so it imports
neither TensorFlow nor this package: the two runtimes' thread pools never
share a process.  It answers one JSON line per request line on stdin:

    {"op": "setup", "cell": "lstm", "x": "x.npy", "y": "y.npy"}  -> {"torch": "2.13.0", "threads": 2}
    {"op": "time", "mode": "train", "calls": 1}                  -> {"seconds": [0.0123]}

The train step mirrors the TensorFlow candidates' (`candidates.keras_steps`):
the last output, MSE against y, gradients and an SGD update; inference is the
forward pass under `no_grad`.  Timed here, so the pipe's latency is not in it.
"""

import json
import sys
import time

import numpy as np

try:
    import torch
except ModuleNotFoundError:  # the package's modules import without their optional peers; setup says so
    torch = None

MODULES = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def torch_steps(cell, x, y):
    """(train, infer) callables of torch.nn's layer for `cell`, over x (batch, time, features)."""
    module = getattr(torch.nn, MODULES[cell])(x.shape[-1], y.shape[-1], batch_first=True)
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-6)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def last_output():
        out, _ = module(tx)
        return out[:, -1]

    def train():
        optimizer.zero_grad()
        loss = ((last_output() - ty) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    def infer():
        with torch.no_grad():
            return last_output().numpy()

    return {"train": train, "infer": infer}


def answer(request, steps):
    if request["op"] == "setup":
        if torch is None:
            raise ModuleNotFoundError("the PyTorch peer needs torch: pip install torch==2.13.0")
        steps.clear()
        steps.update(torch_steps(request["cell"], np.load(request["x"]), np.load(request["y"])))
        return {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if request["op"] == "time":
        step, seconds = steps[request["mode"]], []
        for _ in range(request.get("calls", 1)):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        return {"seconds": seconds}
    raise ValueError(f"unknown op {request['op']!r}")


def main():
    steps = {}
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line), steps)
        except Exception as error:  # the peer raises it, with its text, in the benchmark's process
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
