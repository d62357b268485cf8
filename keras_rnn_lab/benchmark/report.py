"""The benchmark's tables: median milliseconds and speed-ups over the built-in
and over torch, per round, with the rounds' spread."""

import statistics

from keras_rnn_lab.benchmark.candidates import BUILTIN, SHAPES, TORCH, Row
from keras_rnn_lab.benchmark.matmuls_only import MATMULS_ONLY


def format_generation(timings, units, length):
    fast = timings["compiled loop"]
    lines = [f"generation: {length} characters, Embedding(64) -> keras_rnn_lab.LSTM({units}) -> Dense, batch 1"]
    for name, seconds in timings.items():
        lines.append(f"  {name:<28} {seconds:>9.3f} s   {seconds / fast:>8.1f}x the compiled loop's time")
    return "\n".join(lines)


def format_profile(title, wall_ms, by_type, by_op, top=8):
    lines = [f"{title}: {wall_ms:.1f} ms wall per training step, {sum(by_type.values()):.1f} ms of kernel time"]
    lines += [f"    {name:<32} {ms:8.2f} ms" for name, ms in by_type.most_common(top)]
    lines.append("  largest ops:")
    lines += [f"    {name[-70:]:<70} {ms:8.2f} ms" for name, ms in by_op.most_common(top)]
    return "\n".join(lines)


def round_ratios(reference, candidate):
    """Per round, reference seconds / candidate seconds (> 1: the candidate is faster)."""
    return [r / c for r, c in zip(reference, candidate)]


def median_and_range(values):
    return statistics.median(values), (min(values), max(values))


def rows_from_samples(cell, shape, train_samples, infer_samples):
    """Rows from `timing.interleaved_samples`' rounds ({candidate: [seconds per round]})
    of a training step and an inference call: medians in ms, and each ratio to
    the built-in (and to torch, when it ran) as the median of the rounds' ratios
    with their min and max."""
    rows = []
    for name in train_samples:
        train, infer = train_samples[name], infer_samples[name]
        row = Row(cell, shape, name, 1e3 * statistics.median(train), 1e3 * statistics.median(infer))
        row.train_rounds_ms, row.infer_rounds_ms = [1e3 * t for t in train], [1e3 * t for t in infer]
        row.train_speedup, row.train_speedup_range = median_and_range(round_ratios(train_samples[BUILTIN], train))
        row.infer_speedup, row.infer_speedup_range = median_and_range(round_ratios(infer_samples[BUILTIN], infer))
        if TORCH in train_samples:
            row.train_vs_torch, row.train_vs_torch_range = median_and_range(round_ratios(train_samples[TORCH], train))
            row.infer_vs_torch, row.infer_vs_torch_range = median_and_range(round_ratios(infer_samples[TORCH], infer))
        rows.append(row)
    return rows


ROUNDS_NOTE = (
    "{repeats} rounds, each timing every candidate once in turn (torch in its own process, then a pause); "
    "ms: medians over the rounds; x built-in, x torch: the median of the rounds' ratios (reference ms / "
    "candidate ms, > 1: faster) with their min-max."
)

MATMULS_ONLY_NOTE = (
    f"'{MATMULS_ONLY}': our layers' forward and backward loops with only their matmuls (no activations, no gate "
    "arithmetic); a fast layer's distance from it is what the cell's own arithmetic costs."
)


def _ratio(median, spread):
    if median is None:
        return f"{'-':>17}"
    return f"{median:>5.2f} ({spread[0]:.2f}-{spread[1]:.2f})"


def format_table(rows):
    """Medians in ms; ratios as median (min-max over the rounds)."""
    header = (
        f"{'cell':<11} {'shape':<18} {'candidate':<15} {'train ms':>9} {'x built-in':>17} {'x torch':>17} "
        f"{'infer ms':>9} {'x built-in':>17} {'x torch':>17}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        shape = r.shape if r.shape not in SHAPES else f"{r.shape} {'x'.join(map(str, SHAPES[r.shape]))}"
        lines.append(
            f"{r.cell:<11} {shape:<18.18} {r.candidate:<15} {r.train_ms:>9.1f} "
            f"{_ratio(r.train_speedup, r.train_speedup_range)} {_ratio(r.train_vs_torch, r.train_vs_torch_range)} "
            f"{r.infer_ms:>9.1f} {_ratio(r.infer_speedup, r.infer_speedup_range)} "
            f"{_ratio(r.infer_vs_torch, r.infer_vs_torch_range)}"
        )
    return "\n".join(lines)
