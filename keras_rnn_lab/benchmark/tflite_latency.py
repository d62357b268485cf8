"""`python -m keras_rnn_lab.benchmark.tflite_latency`: TFLite's fused LSTM op
against the while loop, in LiteRT's interpreter.

One model, Embedding(40, 32) -> keras_rnn_lab.LSTM(units) -> Dense(2) over
`steps` tokens, written twice by `serving.tflite_export.export_tflite`: as
the while loop (the default export) and with the fused
UNIDIRECTIONAL_SEQUENCE_LSTM op (`--fused-batch`, converted at each batch
size).  For every batch size and thread count the two interpreters run in
turn, invoke after invoke (`timing.interleaved_samples`), so a machine that
speeds up or slows down affects both alike; the table gives each file's
median and range in ms and the median of the per-pair ratios fused / loop
with its 10th-90th percentile range.
"""

import argparse
import statistics
import sys
import tempfile

import keras
import numpy as np

from keras_rnn_lab.benchmark.timing import interleaved_samples
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.training.command_line import positive_int, program, run_command


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UsageError(
            "the TFLite latency benchmark needs LiteRT's interpreter: pip install ai-edge-litert"
        ) from None
    return Interpreter


def build_model(units, seed=0):
    import keras_rnn_lab

    keras.utils.set_random_seed(seed)
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    hidden = keras_rnn_lab.LSTM(units)(keras.layers.Embedding(40, 32)(tokens))
    return keras.Model(tokens, keras.layers.Dense(2)(hidden))


def tflite_files(model, batches):
    """{"loop": bytes, ("fused", batch): bytes, ...} of `model`."""
    from keras_rnn_lab.serving import export, tflite_export

    endpoints = {"classify": export.array_endpoint(model, input_names=["tokens"])}
    files = {}
    with tempfile.TemporaryDirectory() as scratch:
        for key, fused_batch in [("loop", None), *((("fused", b), b) for b in batches)]:
            path = tflite_export.export_tflite(
                model, endpoints, f"{scratch}/{len(files)}", keras_copy=False, fused_batch=fused_batch
            )
            with open(path, "rb") as stream:
                files[key] = stream.read()
    return files


def invoker(interpreter_class, content, tokens, threads):
    interpreter = interpreter_class(model_content=content, num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, tokens.shape)
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]

    def invoke():
        interpreter.set_tensor(index, tokens)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return invoke


def measure(files, batches, threads_list, steps, invokes):
    """Rows: (batch, threads, loop ms samples, fused ms samples)."""
    interpreter_class = _interpreter_class()
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        tokens = rng.integers(1, 40, size=(batch, steps), dtype=np.int32)
        for threads in threads_list:
            candidates = {
                "loop": invoker(interpreter_class, files["loop"], tokens, threads),
                "fused": invoker(interpreter_class, files[("fused", batch)], tokens, threads),
            }
            np.testing.assert_allclose(candidates["loop"](), candidates["fused"](), atol=1e-4)  # the same model
            samples = interleaved_samples(candidates, invokes, warmup=10)
            rows.append((batch, threads, samples["loop"], samples["fused"]))
    return rows


def format_rows(rows, units, steps):
    def milliseconds(samples):
        values = [1000 * s for s in samples]
        return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"

    lines = [
        f"LiteRT, Embedding(40, 32) -> LSTM({units}) -> Dense(2), {steps} steps; ms per invoke: median [min-max]",
        "| batch | threads | while loop | fused UNIDIRECTIONAL_SEQUENCE_LSTM | fused / loop: median [p10-p90] |",
        "|---|---|---|---|---|",
    ]
    for batch, threads, loop, fused in rows:
        ratios = sorted(f / w for f, w in zip(fused, loop))  # pair by pair: the same moment of the machine
        deciles = statistics.quantiles(ratios, n=10)
        spread = f"{statistics.median(ratios):.2f}x [{deciles[0]:.2f}-{deciles[-1]:.2f}]"
        lines.append(f"| {batch} | {threads} | {milliseconds(loop)} | {milliseconds(fused)} | {spread} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=program("python -m keras_rnn_lab.benchmark.tflite_latency"), description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--units", type=positive_int, default=128)
    parser.add_argument("--steps", type=positive_int, default=50)
    parser.add_argument("--batches", type=positive_int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--invokes", type=positive_int, default=50, help="timed invokes of each file per case")
    args = parser.parse_args(argv)
    _interpreter_class()  # before the conversions: a missing runtime is a usage error
    files = tflite_files(build_model(args.units), args.batches)
    table = format_rows(measure(files, args.batches, args.threads, args.steps, args.invokes), args.units, args.steps)
    print(table)
    return table


if __name__ == "__main__":
    sys.exit(run_command(main, "python -m keras_rnn_lab.benchmark.tflite_latency"))
