"""translation's report: exact match, BLEU (ours and sacreBLEU's) of both
searches, then a few test sentences greedy decoding got wrong."""

from keras_rnn_lab.data.sentence_pairs import SPLITS
from keras_rnn_lab.diagnostics.bleu import sacrebleu_note


def split_counts_and_model(config, data):
    """("900 train / 100 validation / ... ", "bidirectional lstm 128 + attention"): the
    header of the encoder-decoder recipes' reports (translation, dialogue)."""
    counts = " / ".join(f"{len(data.pairs[split][0]):,} {split}" for split in SPLITS)
    model = f"{'bidirectional ' if config.bidirectional else ''}{config.cell}{' (keras)' if config.builtin else ''}"
    model += f" {config.units}{' + attention' if config.attention else ''}"
    return counts, model


def format_report(result, examples=5):
    """The scores table of a `TrainResult`, then up to `examples` greedy mistakes."""
    config, data = result.config, result.data
    counts, model = split_counts_and_model(config, data)
    epochs = len(result.history["loss"])
    lines = [f"{data.name}: {counts} pairs; {model}", f"{epochs} epochs, {result.seconds:.0f} s training", ""]
    lines.append(f"{'test':<18}{'exact match':>12}{'BLEU':>8}{'sacreBLEU':>11}{'seconds':>9}")
    for method, label in (("greedy", "greedy"), ("beam", f"beam (width {config.beam_width})")):
        s = result.scores[method]
        sacre = f"{s['sacrebleu']:>11.2f}" if s.get("sacrebleu") is not None else f"{'-':>11}"
        lines.append(
            f"{label:<18}{s['exact_match']:>12.4f}{s['bleu']:>8.4f}{sacre}{result.decode_seconds[method]:>9.1f}"
        )
    lines.append(sacrebleu_note())
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
