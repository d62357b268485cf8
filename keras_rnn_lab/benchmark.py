"""Side-by-side speed of the Keras built-ins, `RNN(our cell)` and our fast layers.

    python -m keras_rnn_lab.benchmark                      # all cells, three shapes
    python -m keras_rnn_lab.benchmark --cells lstm --shapes reference --repeats 21
    python -m keras_rnn_lab.benchmark --shapes 32x20x16x64 --json bench.json
    python -m keras_rnn_lab.benchmark --generation       # 1,000 characters, compiled vs predict
    python -m keras_rnn_lab.benchmark --profile --cells gru --shapes reference   # where the time goes

Everything is measured in one process and *interleaved*: each repeat times every
TensorFlow candidate once, in turn, so a noisy neighbour slows all of them alike.
PyTorch is timed on its own after them (its OpenMP threads spin after each op
and would slow whatever ran next).  The
table shows median milliseconds and the speed-up over the built-in
(built-in median / candidate median; > 1 is faster).  PyTorch's nn.LSTM / nn.GRU
/ nn.RNN join the table when torch is installed (`pip install torch==2.13.0`).

Each cell also gets a "matmuls only" row: our layers' loops with the cell's
matmul shapes and nothing else (`linear_recurrence_gradients`).  How close a
fast layer comes to it shows what bounds it: the matmuls, which no
rearrangement of the gate arithmetic removes, or that arithmetic.
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_rnn_lab  # noqa: E402
from keras_rnn_lab.layers.bptt import loop  # noqa: E402

# (batch, time, features, units); "reference" is the shape the targets are set on.
SHAPES = {
    "small": (32, 50, 32, 128),
    "reference": (64, 100, 64, 256),
    "large": (64, 200, 128, 512),
}
CELLS = {
    "simple_rnn": (keras.layers.SimpleRNN, keras_rnn_lab.SimpleRNNCell, keras_rnn_lab.SimpleRNN),
    "lstm": (keras.layers.LSTM, keras_rnn_lab.LSTMCell, keras_rnn_lab.LSTM),
    "gru": (keras.layers.GRU, keras_rnn_lab.GRUCell, keras_rnn_lab.GRU),
}
TORCH_MODULES = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# Gate blocks per cell: the width of its matmuls is gates * units.
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
MATMULS_ONLY = "matmuls only"


@dataclasses.dataclass
class Row:
    cell: str
    shape: str
    candidate: str
    train_ms: float
    infer_ms: float
    train_speedup: float = 1.0
    infer_speedup: float = 1.0


def _keras_candidates(cell, units):
    builtin, cell_class, fast = CELLS[cell]
    return {
        "keras built-in": builtin(units),
        "RNN(our cell)": keras.layers.RNN(cell_class(units)),
        "keras_rnn_lab": fast(units),
    }


def _keras_steps(layer, x, y):
    """Compiled training step (forward, MSE, gradients, SGD update) and inference."""
    layer(x)
    optimizer = keras.optimizers.SGD(1e-6)
    optimizer.build(layer.trainable_variables)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True) - y))
        optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
        return loss

    @tf.function
    def infer():
        return layer(x, training=False)

    return lambda: train().numpy(), lambda: infer().numpy()


def linear_recurrence(x, kernel, recurrent_kernel, gates):
    """The matmuls of our layers' forward pass and nothing else.

    x: (time, batch, features); kernel U: (features, gates*units); recurrent
    kernel W: (units, gates*units).  With a_t = x_t U + h_{t-1} W (all steps'
    x_t U in one matmul, as our layers do when training; h_t W split over the
    two cores as they do, `loop.two_core_matmul`),
        h_t = sum of the `gates` blocks of a_t          (h_{-1} = 0)
    a linear recurrence with the cell's matmul shapes but none of its gate
    arithmetic.  Returns the states (time, batch, units).
    """
    steps, batch, features = x.shape
    units = recurrent_kernel.shape[0]
    projected = tf.reshape(tf.matmul(tf.reshape(x, [-1, features]), kernel), [steps, batch, gates * units])
    recurrent_product = loop.two_core_matmul(recurrent_kernel, batch)

    def step(t, h, states):
        a = tf.gather(projected, t) + recurrent_product(h)
        h = tf.reduce_sum(tf.reshape(a, [batch, gates, units]), axis=1) if gates > 1 else a
        return t + 1, h, states.write(t, h)

    initial = (0, tf.zeros([batch, units], x.dtype), tf.TensorArray(x.dtype, size=steps))
    _, _, states = tf.while_loop(lambda t, *_: t < steps, step, initial)
    return states.stack()


def linear_recurrence_gradients(x, states, recurrent_kernel, gates, d_last):
    """BPTT of `linear_recurrence` (its `states`) for a gradient d_last reaching h_T only: (dU, dW).

    Our layers' backward pass with only its matmuls: da_t = dh_t copied into
    every gate block, dh_{t-1} = da_t W^T (split over the two cores), dW +=
    h_{t-1}^T da_t beside the chain, then dU = sum_t x_t^T da_t in one matmul.
    The gap between a layer and this row is what its activations and gate
    arithmetic cost.
    """
    steps, batch, features = x.shape
    back_product = loop.two_core_matmul(tf.transpose(recurrent_kernel), batch)

    def step(i, dh, d_recurrent, d_pre):
        t = steps - 1 - i
        da = tf.tile(dh, [1, gates]) if gates > 1 else dh
        h_prev = tf.gather(states, tf.maximum(t - 1, 0)) * tf.cast(t > 0, x.dtype)
        d_recurrent = d_recurrent + tf.matmul(h_prev, da, transpose_a=True)
        return i + 1, back_product(da), d_recurrent, d_pre.write(t, da)

    initial = (0, d_last, tf.zeros_like(recurrent_kernel), tf.TensorArray(x.dtype, size=steps))
    _, _, d_recurrent, d_pre = tf.while_loop(lambda i, *_: i < steps, step, initial)
    d_pre = tf.reshape(d_pre.stack(), [steps * batch, -1])
    d_kernel = tf.matmul(tf.reshape(x, [steps * batch, features]), d_pre, transpose_a=True)
    return d_kernel, d_recurrent


def _matmuls_only_steps(cell, x, y):
    """Training step and inference of the matmuls-only row (`linear_recurrence_gradients`)."""
    gates, units = GATES[cell], y.shape[-1]
    rng = np.random.default_rng(0)
    # Rows of an orthogonal matrix over `gates` keep h_t bounded without activations.
    orthogonal = np.linalg.qr(rng.standard_normal((gates * units, gates * units)))[0][:units] / gates
    recurrent_kernel = tf.Variable(orthogonal.astype(np.float32))
    kernel = tf.Variable((rng.standard_normal((x.shape[-1], gates * units)) / np.sqrt(x.shape[-1])).astype(np.float32))
    time_major = tf.transpose(x, [1, 0, 2])

    @tf.function
    def train():
        states = linear_recurrence(time_major, kernel, recurrent_kernel, gates)
        h_last = states[-1]
        d_kernel, d_recurrent = linear_recurrence_gradients(time_major, states, recurrent_kernel, gates, h_last - y)
        kernel.assign_sub(1e-9 * d_kernel)
        recurrent_kernel.assign_sub(1e-9 * d_recurrent)
        return tf.reduce_sum(h_last)

    @tf.function
    def infer():
        return linear_recurrence(time_major, kernel, recurrent_kernel, gates)[-1]

    return lambda: train().numpy(), lambda: infer().numpy()


def _torch_steps(cell, x, y):
    import torch

    batch, _, features = x.shape
    module = getattr(torch.nn, TORCH_MODULES[cell])(features, y.shape[-1], batch_first=True)
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

    return train, infer


# Long enough for PyTorch's spinning OpenMP threads to go to sleep before the
# next TensorFlow timing.
_TORCH_SPIN_SECONDS = 1.0


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _interleaved_medians(candidates, repeats, warmup=2):
    """{name: median seconds} with every repeat running each candidate once."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_layer(cell, shape_name, repeats, with_torch):
    batch, steps, features, units = _shape_of(shape_name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, features), dtype=np.float32)
    y = rng.standard_normal((batch, units), dtype=np.float32)
    trains, infers = {}, {}
    for name, layer in _keras_candidates(cell, units).items():
        trains[name], infers[name] = _keras_steps(layer, tf.constant(x), tf.constant(y))
    trains[MATMULS_ONLY], infers[MATMULS_ONLY] = _matmuls_only_steps(cell, tf.constant(x), tf.constant(y))
    train_ms = _interleaved_medians(trains, repeats)
    infer_ms = _interleaved_medians(infers, repeats)
    if with_torch:
        # Timed on its own, after the TensorFlow candidates: PyTorch's OpenMP
        # threads spin-wait after each op and take the cores from whatever runs
        # next (interleaved, the built-in SimpleRNN measured 19-21 ms instead of
        # 14-16 ms).  Passive waiting would instead slow torch itself ~2x.
        trains["torch"], infers["torch"] = _torch_steps(cell, x, y)
        train_ms.update(_interleaved_medians({"torch": trains["torch"]}, repeats))
        infer_ms.update(_interleaved_medians({"torch": infers["torch"]}, repeats))
        time.sleep(_TORCH_SPIN_SECONDS)
    rows = [Row(cell, shape_name, name, 1e3 * train_ms[name], 1e3 * infer_ms[name]) for name in trains]
    return _with_speedups(rows)


def bench_model(repeats, vocabulary=2000, batch=64, steps=100, units=256):
    """Embedding -> LSTM -> Dense over tokens, one `train_on_batch` per sample."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, vocabulary, size=(batch, steps))
    labels = rng.integers(0, 2, size=(batch, 1)).astype("float32")
    trains, infers = {}, {}
    for name, lstm in (("keras built-in", keras.layers.LSTM), ("keras_rnn_lab", keras_rnn_lab.LSTM)):
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
    train_ms = _interleaved_medians(trains, repeats)
    infer_ms = _interleaved_medians(infers, repeats)
    rows = [Row("lstm model", f"{batch}x{steps} tokens", n, 1e3 * train_ms[n], 1e3 * infer_ms[n]) for n in trains]
    return _with_speedups(rows)


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
    timings = _interleaved_medians({"compiled loop": lambda: generator(prime, length, seed=0)}, repeats, warmup=0)

    names = np.array(lookup.get_vocabulary())
    text = list(prime)
    start = time.perf_counter()
    for _ in range(length):  # the prefix grows by one character per call
        logits = model.predict(tf.constant([text]), verbose=0)[0, -1]
        text.append(names[1 + int(np.argmax(logits[1:]))])
    timings["model.predict on the prefix"] = time.perf_counter() - start
    return timings


def format_generation(timings, units, length):
    fast = timings["compiled loop"]
    lines = [f"generation: {length} characters, Embedding(64) -> keras_rnn_lab.LSTM({units}) -> Dense, batch 1"]
    for name, seconds in timings.items():
        lines.append(f"  {name:<28} {seconds:>9.3f} s   {seconds / fast:>8.1f}x the compiled loop's time")
    return "\n".join(lines)


def profile_training_step(layer, shape_name, steps=5):
    """Op-level profile of `steps` training steps: {op type: ms per step}, {op: ms per step}.

    Uses TensorFlow's profiler (tf.profiler.experimental) and reads the host
    plane of its XSpace; an op's time is its own kernel time, so ops that ran
    side by side on the two cores add up to more than the wall time.
    """
    import collections
    import glob
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    batch, time_steps, features, units = _shape_of(shape_name)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, time_steps, features), dtype=np.float32))
    y = tf.constant(rng.standard_normal((batch, units), dtype=np.float32))
    train, _ = _keras_steps(layer, x, y)
    train(), train()  # traced and warm
    logdir = tempfile.mkdtemp(prefix="keras_rnn_lab_profile_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        train()
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
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


def format_profile(title, wall_ms, by_type, by_op, top=8):
    lines = [f"{title}: {wall_ms:.1f} ms wall per training step, {sum(by_type.values()):.1f} ms of kernel time"]
    lines += [f"    {name:<32} {ms:8.2f} ms" for name, ms in by_type.most_common(top)]
    lines.append("  largest ops:")
    lines += [f"    {name[-70:]:<70} {ms:8.2f} ms" for name, ms in by_op.most_common(top)]
    return "\n".join(lines)


def _with_speedups(rows):
    base = next(r for r in rows if r.candidate == "keras built-in")
    for row in rows:
        row.train_speedup = base.train_ms / row.train_ms
        row.infer_speedup = base.infer_ms / row.infer_ms
    return rows


MATMULS_ONLY_NOTE = (
    f"'{MATMULS_ONLY}': our layers' forward and backward loops with only their matmuls (no activations, no gate "
    "arithmetic); a fast layer's distance from it is what the cell's own arithmetic costs."
)


def format_table(rows):
    header = (
        f"{'cell':<11} {'shape':<18} {'candidate':<15} "
        f"{'train ms':>9} {'x built-in':>10} {'infer ms':>9} {'x built-in':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = r.shape if r.shape not in SHAPES else f"{r.shape} {'x'.join(map(str, SHAPES[r.shape]))}"
        lines.append(
            f"{r.cell:<11} {shape:<18.18} {r.candidate:<15} {r.train_ms:>9.1f} {r.train_speedup:>10.2f} "
            f"{r.infer_ms:>9.1f} {r.infer_speedup:>10.2f}"
        )
    return "\n".join(lines)


def _comma_list(allowed, custom=None):
    """Parse "a,b": names from `allowed`, or anything `custom` accepts."""

    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed and not (custom and custom(item))]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {sorted(allowed)}; received {text!r}"
            )
        return items

    return parse


def _shape_of(name):
    """A named shape, or "BxTxFxU" (batch x time x features x units), or None."""
    if name in SHAPES:
        return SHAPES[name]
    parts = name.split("x")
    if len(parts) == 4 and all(p.isdigit() and int(p) > 0 for p in parts):
        return tuple(int(p) for p in parts)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_rnn_lab.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cells", type=_comma_list(CELLS), default=list(CELLS), help="cells to time (default: all)")
    parser.add_argument(
        "--shapes",
        type=_comma_list(SHAPES, custom=_shape_of),
        default=list(SHAPES),
        help="named shapes (%(default)s) or BxTxFxU, e.g. 32x20x16x64 (default: all named)",
    )
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats per candidate (median is reported)")
    parser.add_argument("--no-model", action="store_true", help="skip the Embedding -> LSTM -> Dense model case")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--generation",
        action="store_true",
        help="instead: time 1,000 generated characters (512-unit LSTM) against model.predict per character",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: TensorFlow profiler breakdown of one training step per candidate",
    )
    parser.add_argument("--generation-length", dest="generation_length", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--generation-units", dest="generation_units", type=int, default=512, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive int; received {args.repeats}")

    if args.profile:
        for cell in args.cells:
            for shape in args.shapes:
                for name, layer in _keras_candidates(cell, _shape_of(shape)[3]).items():
                    report = profile_training_step(layer, shape)
                    print(format_profile(f"{cell} {shape} {name}", *report), flush=True)
        return 0

    if args.generation:
        timings = bench_generation(args.generation_units, args.generation_length, args.repeats)
        print(format_generation(timings, args.generation_units, args.generation_length))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(timings, handle, indent=2)
        return 0

    with_torch = not args.no_torch and _torch_available()
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, {os.cpu_count()} CPUs, torch: {with_torch}")
    rows = []
    for shape in args.shapes:
        for cell in args.cells:
            new_rows = bench_layer(cell, shape, args.repeats, with_torch)
            rows += new_rows
            print(format_table(new_rows).split("\n", 2)[-1], flush=True)
    if not args.no_model:
        rows += bench_model(args.repeats)
    print()
    print(format_table(rows))
    print(MATMULS_ONLY_NOTE)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([dataclasses.asdict(r) for r in rows], handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
