"""The benchmark's tables: median milliseconds and speed-ups over the built-in."""

from keras_rnn_lab.benchmark.candidates import SHAPES
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


def with_speedups(rows):
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
