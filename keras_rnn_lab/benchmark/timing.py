"""Interleaved timing of the candidates (every repeat times each once, in turn),
the model and generation cases, and the profiler breakdown of one step."""

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.benchmark.candidates import BUILTIN, TF_OPS, TORCH, keras_candidates, keras_steps, shape_of
from keras_rnn_lab.benchmark.matmuls_only import MATMULS_ONLY, matmuls_only_steps
from keras_rnn_lab.benchmark.report import rows_from_samples


class SelfTimed:
    """A candidate that reports its own seconds (`seconds()`, timed in another
    process), followed by a `pause` before the next candidate runs."""

    def __init__(self, seconds, pause=0.0):
        self.seconds = seconds
        self.pause = pause


def _run_once(fn):
    if isinstance(fn, SelfTimed):
        seconds = fn.seconds()
        time.sleep(fn.pause)
        return seconds
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_samples(candidates, repeats, warmup=2):
    """{name: [seconds of each repeat]} with every repeat (a round) running each
    candidate once, in turn: a change in the machine's speed moves a round's
    candidates together, so a ratio taken within each round survives it.
    A `SelfTimed` candidate gives its own seconds."""
    for fn in candidates.values():
        for _ in range(warmup):
            _run_once(fn)
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(_run_once(fn))
    return samples


def interleaved_medians(candidates, repeats, warmup=2):
    """{name: median seconds} with every repeat running each candidate once."""
    samples = interleaved_samples(candidates, repeats, warmup)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_layer(cell, shape_name, repeats, torch_peer=None):
    """Rows for `cell` at `shape_name`: the TensorFlow candidates, the matmuls-only
    bound and, given a running `torch_peer.TorchPeer`, torch.nn's layer, all in
    the same rounds."""
    batch, steps, features, units = shape_of(shape_name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features), dtype=np.float32)
    y = rng.standard_normal((batch, units), dtype=np.float32)
    trains, infers = {}, {}
    for name, layer in keras_candidates(cell, units).items():
        trains[name], infers[name] = keras_steps(layer, tf.constant(x), tf.constant(y), plain_ops=name == TF_OPS)
    trains[MATMULS_ONLY], infers[MATMULS_ONLY] = matmuls_only_steps(cell, tf.constant(x), tf.constant(y))
    if torch_peer is not None:
        torch_peer.setup(cell, x, y)
        trains[TORCH], infers[TORCH] = torch_peer.timer("train"), torch_peer.timer("infer")
    return _rows(cell, shape_name, trains, infers, repeats)


def _rows(cell, shape, trains, infers, repeats):
    """All training steps interleaved in rounds, then all inference calls."""
    return rows_from_samples(cell, shape, interleaved_samples(trains, repeats), interleaved_samples(infers, repeats))


def bench_model(repeats, vocabulary=2000, batch=64, steps=100, units=256):
    """Embedding -> LSTM -> Dense over tokens, one `train_on_batch` per sample."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, vocabulary, size=(batch, steps))
    labels = rng.integers(0, 2, size=(batch, 1)).astype("float32")
    trains, infers = {}, {}
    for name, lstm in ((BUILTIN, keras.layers.LSTM), ("keras_rnn_lab", keras_rnn_lab.LSTM)):
        model = keras.Sequential(
            [
                keras.Input((steps,), dtype="int32"),
                keras.layers.Embedding(vocabulary, 64),
                lstm(units),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        trains[name] = lambda m=model: m.train_on_batch(tokens, labels)
        infers[name] = lambda m=model: m.predict_on_batch(tokens)
    return _rows("lstm model", f"{batch}x{steps} tokens", trains, infers, repeats)


def bench_generation(units=512, length=1000, repeats=5, vocabulary="abcdefghijklmnopqrstuvwxyz .,;'\n"):
    """Characters from a (random-weight) char model: our compiled loop against
    `model.predict` on the growing prefix, once per character (the naive way).

    Speed does not depend on the weights.  Returns {name: seconds for `length` characters}.
    """
    from keras_rnn_lab.decoding.generation import TextGenerator

    lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1, mask_token=None)
    characters = keras.Input((None,), dtype="string")
    x = keras.layers.Embedding(lookup.vocabulary_size(), 64)(lookup(characters))
    x = keras_rnn_lab.LSTM(units, return_sequences=True)(x)
    model = keras.Model(characters, keras.layers.Dense(lookup.vocabulary_size())(x))
    generator = TextGenerator(model)
    prime = "the "
    generator(prime, length, seed=0)  # warm-up: traces the loop
    timings = interleaved_medians({"compiled loop": lambda: generator(prime, length, seed=0)}, repeats, warmup=0)

    names = np.array(lookup.get_vocabulary())
    text = list(prime)
    start = time.perf_counter()
    for _ in range(length):  # the prefix grows by one character per call
        logits = model.predict(tf.constant([text]), verbose=0)[0, -1]
        text.append(names[1 + int(np.argmax(logits[1:]))])
    timings["model.predict on the prefix"] = time.perf_counter() - start
    return timings


def profile_training_step(layer, shape_name, steps=5, plain_ops=False):
    """Op-level profile of `steps` training steps: {op type: ms per step}, {op: ms per step}.

    Uses TensorFlow's profiler (tf.profiler.experimental) and reads the host
    plane of its XSpace; an op's time is its own kernel time, so ops that ran
    side by side on the two cores add up to more than the wall time.
    """
    import collections
    import glob
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    batch, time_steps, features, units = shape_of(shape_name)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, time_steps, features), dtype=np.float32))
    y = tf.constant(rng.standard_normal((batch, units), dtype=np.float32))
    train, _ = keras_steps(layer, x, y, plain_ops)
    train(), train()  # traced and warm
    space = xplane_pb2.XSpace()
    # The trace is read here and nothing else needs it: a kept folder per call filled /tmp.
    with tempfile.TemporaryDirectory(prefix="keras_rnn_lab_profile_") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(steps):
            train()
        wall = (time.perf_counter() - start) / steps
        tf.profiler.experimental.stop()
        with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as handle:
            space.ParseFromString(handle.read())
    host = next(plane for plane in space.planes if plane.name.startswith("/host:CPU"))
    by_type, by_op = collections.Counter(), collections.Counter()
    for line in host.lines:
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            if ":" not in name or name.startswith(("ExecutorState", "EagerLocalExecute", "KernelAndDeviceFunc")):
                continue  # function and scheduling spans enclose the ops; count kernels only
            ms = event.duration_ps / 1e9 / steps
            by_type[name.rsplit(":", 1)[1]] += ms
            by_op[name] += ms
    return 1e3 * wall, by_type, by_op
