"""translation's report: exact match and BLEU of both searches, then a few
test sentences greedy decoding got wrong."""

from keras_rnn_lab.data.sentence_pairs import SPLITS


def format_report(result, examples=5):
    """The scores table of a `TrainResult`, then up to `examples` greedy mistakes."""
    config, data = result.config, result.data
    counts = " / ".join(f"{len(data.pairs[split][0]):,} {split}" for split in SPLITS)
    model = f"{'bidirectional ' if config.bidirectional else ''}{config.cell}{' (keras)' if config.builtin else ''}"
    model += f" {config.units}{' + attention' if config.attention else ''}"
    epochs = len(result.history["loss"])
    lines = [f"{data.name}: {counts} pairs; {model}", f"{epochs} epochs, {result.seconds:.0f} s training", ""]
    lines.append(f"{'test':<18}{'exact match':>12}{'BLEU':>8}{'seconds':>9}")
    for method, label in (("greedy", "greedy"), ("beam", f"beam (width {config.beam_width})")):
        s = result.scores[method]
        lines.append(f"{label:<18}{s['exact_match']:>12.4f}{s['bleu']:>8.4f}{result.decode_seconds[method]:>9.1f}")
    sources, references = data.pairs["test"]
    wrong = [i for i, (r, h) in enumerate(zip(references, result.translations["greedy"])) if r != h]
    if wrong:
        lines += ["", f"greedy mistakes ({len(wrong)} of {len(references)}), the first {min(examples, len(wrong))}:"]
        for i in wrong[:examples]:
            lines += [
                f"  {' '.join(sources[i])}",
                f"    expected {' '.join(references[i])}",
                f"    greedy   {' '.join(result.translations['greedy'][i])}",
                f"    beam     {' '.join(result.translations['beam'][i])}",
            ]
    return "\n".join(lines)
