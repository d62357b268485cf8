"""`python -m keras_rnn_lab.benchmark`: side-by-side speed of the Keras built-ins, `RNN(our cell)` and our fast layers.

    python -m keras_rnn_lab.benchmark                      # all cells, three shapes
    python -m keras_rnn_lab.benchmark --cells lstm --shapes reference --repeats 21
    python -m keras_rnn_lab.benchmark --shapes 32x20x16x64 --json bench.json
    python -m keras_rnn_lab.benchmark --generation       # 1,000 characters, compiled vs predict
    python -m keras_rnn_lab.benchmark --profile --cells gru --shapes reference   # where the time goes

Everything is *interleaved*: each round (repeat) times every candidate once, in
turn, so a change in the machine's speed moves a round's candidates together.
PyTorch's nn.LSTM / nn.GRU / nn.RNN join every round when torch is installed
(`pip install torch==2.13.0`), timed in a process of their own (`torch_peer`:
their OpenMP threads would slow the TensorFlow op that runs next), followed by
a pause.  The table shows median milliseconds over the rounds and each ratio
(built-in or torch ms / candidate ms; > 1 is faster) as the median of the
rounds' own ratios with their min-max.

Each cell also gets a "matmuls only" row: our layers' loops with the cell's
matmul shapes and nothing else (`linear_recurrence_gradients`).  How close a
fast layer comes to it shows what bounds it: the matmuls, which no
rearrangement of the gate arithmetic removes, or that arithmetic.
"""

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import os

import keras
import tensorflow as tf

from keras_rnn_lab.benchmark.candidates import CELLS, SHAPES, TF_OPS, keras_candidates, shape_of
from keras_rnn_lab.benchmark.report import (
    MATMULS_ONLY_NOTE,
    ROUNDS_NOTE,
    format_generation,
    format_profile,
    format_table,
)
from keras_rnn_lab.benchmark.timing import bench_generation, bench_layer, bench_model, profile_training_step
from keras_rnn_lab.benchmark.torch_peer import TorchPeer, torch_available
from keras_rnn_lab.output_paths import check_writable_parent
from keras_rnn_lab.training.command_line import positive_int, program, usage_errors


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


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=program("python -m keras_rnn_lab.benchmark"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cells", type=_comma_list(CELLS), default=list(CELLS), help="cells to time (default: all)")
    parser.add_argument(
        "--shapes",
        type=_comma_list(SHAPES, custom=shape_of),
        default=list(SHAPES),
        help="named shapes (%(default)s) or BxTxFxU, e.g. 32x20x16x64 (default: all named)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=11, help="timed repeats per candidate (median is reported)"
    )
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
    parser.add_argument(
        "--generation-length", dest="generation_length", type=positive_int, default=1000, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--generation-units", dest="generation_units", type=positive_int, default=512, help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.json:
        with usage_errors(parser):  # a --json that cannot be written fails now, not after the timings
            check_writable_parent(args.json, "--json")

    if args.profile:
        for cell in args.cells:
            for shape in args.shapes:
                for name, layer in keras_candidates(cell, shape_of(shape)[3]).items():
                    report = profile_training_step(layer, shape, plain_ops=name == TF_OPS)
                    print(format_profile(f"{cell} {shape} {name}", *report), flush=True)
        return 0

    if args.generation:
        timings = bench_generation(args.generation_units, args.generation_length, args.repeats)
        print(format_generation(timings, args.generation_units, args.generation_length))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(timings, handle, indent=2)
        return 0

    with_torch = not args.no_torch and torch_available()
    torch_line = f"torch {importlib.metadata.version('torch')} in its own process" if with_torch else "torch: not timed"
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, {os.cpu_count()} CPUs, {torch_line}")
    print(ROUNDS_NOTE.format(repeats=args.repeats))
    print(format_table([]))
    rows = []
    with TorchPeer() if with_torch else contextlib.nullcontext() as peer:
        for shape in args.shapes:
            for cell in args.cells:
                new_rows = bench_layer(cell, shape, args.repeats, peer)
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
