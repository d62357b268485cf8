"""captioning's report: the scores table, how the held-out colour-shape pairs
were named, and a PNG grid of captioned test images."""

import collections
import re
import time

import keras

from keras_rnn_lab.data.captions import tokenize
from keras_rnn_lab.diagnostics.bleu import sacrebleu_note


class EpochTimer(keras.callbacks.Callback):
    """Seconds of every training epoch, for the report's time per epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def write_grid(path, data, predictions, columns=6, rows_per_split=2, method="beam"):
    """A PNG of test images under their predicted captions: the first right ones
    and the first wrong ones of every test split (green: right, red: wrong, with
    the reference below).  Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = []  # (image, split, prediction, reference, right)
    for split, by_method in predictions.items():
        caption_set = data.splits[split]
        predicted = by_method[method]
        right = [tokenize(p) in [tokenize(r) for r in refs] for p, refs in zip(predicted, caption_set.references)]
        wrong_rows = [i for i, ok in enumerate(right) if not ok][: columns * rows_per_split // 2]
        right_rows = [i for i, ok in enumerate(right) if ok][: columns * rows_per_split - len(wrong_rows)]
        for i in right_rows + wrong_rows:
            panels.append((caption_set.images[i], split, predicted[i], caption_set.references[i][0], right[i]))
    if not panels:
        raise ValueError("Argument `predictions` holds no captions to draw.")
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.3 * rows + 0.5), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image, split, predicted, reference, right) in zip(axes.flat, panels):
        axis.imshow(image)
        text = f"[{split}] " + (predicted or "(nothing)")
        text = _wrap(text) + ("" if right else "\ntrue: " + _wrap(reference))
        axis.text(
            0.5,
            -0.03,
            text,
            transform=axis.transAxes,
            ha="center",
            va="top",
            fontsize=7.5,
            color="darkgreen" if right else "darkred",
        )
    figure.suptitle(
        f"{method} captions: green right, red wrong (reference below)", fontsize=11, y=1 - 0.12 / figure.get_figheight()
    )
    figure.subplots_adjust(
        left=0.01,
        right=0.99,
        top=1 - 0.5 / figure.get_figheight(),
        bottom=0.75 / figure.get_figheight(),
        wspace=0.08,
        hspace=0.45,
    )
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _wrap(text, width=34):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


def format_report(result):
    """Exact match and BLEU-4 (ours and sacreBLEU's) of every test split and decoding,
    then how the held-out pairs were named."""
    config, data = result.config, result.data
    attention = "with attention" if config.attention else "no attention"
    seconds = result.seconds
    lines = [
        f"{data.source}: {config.cell}{' (keras)' if config.builtin else ''} {config.units} {attention}, "
        f"{len(data.splits['train'])} training images, {len(result.history['loss'])} epochs "
        f"({seconds['epoch']:.1f} s each), {seconds['total']:.0f} s in all "
        f"(data {seconds['data']:.0f} s, fit {seconds['fit']:.0f} s, captions {seconds['evaluation']:.0f} s)",
        "",
        f"{'':<44}{'exact':>8}{'BLEU-4':>8}{'sacreBLEU':>11}",
    ]
    titles = {"test": "test images"}
    if data.source == "shapes":
        titles = {"test": "new scenes, seen pairs", "held_out": "scenes with held-out pairs"}
    for split, by_method in result.scores.items():
        for method, score in by_method.items():
            label = f"{titles[split]}, {method}" + (f" (width {config.beam_width})" if method == "beam" else "")
            sacre = f"{score['sacrebleu']:>11.2f}" if score.get("sacrebleu") is not None else f"{'-':>11}"
            lines.append(f"{label:<44}{100 * score['exact']:>7.1f}%{score['bleu']:>8.3f}{sacre}")
    lines.append(sacrebleu_note())
    if "held_out" in result.predictions:
        lines += ["", "held-out pairs (beam): named right / seen, and what was said instead"]
        named = held_out_naming(
            data.splits["held_out"].references, result.predictions["held_out"]["beam"], config.held_out_pairs
        )
        for (colour, shape), (count, right, instead) in named.items():
            common = ", ".join(f"{phrase!r} {n}" for phrase, n in instead.most_common(3))
            lines.append(f"  {colour + ' ' + shape:<16}{right:>5} / {count:<5} {common}")
    if result.grid_path:
        lines += ["", f"grid of captions: {result.grid_path}"]
    return "\n".join(lines)


def held_out_naming(references, predictions, pairs):
    """{(colour, shape): (objects of that pair, named right, Counter of "colour shape" said instead)}.

    An object is named right when its "colour shape" appears in the prediction
    at the same object position (first or second) as in the reference.
    """
    pattern = re.compile(r"\ba (?:small|large) (\w+) (\w+)")
    results = {tuple(pair): [0, 0, collections.Counter()] for pair in pairs}
    for refs, predicted in zip(references, predictions):
        said = [" ".join(m) for m in pattern.findall(predicted)]
        for slot, truth in enumerate(pattern.findall(refs[0])):
            if truth not in results:
                continue
            entry = results[truth]
            entry[0] += 1
            spoken = said[slot] if slot < len(said) else "(nothing)"
            if spoken == " ".join(truth):
                entry[1] += 1
            else:
                entry[2][spoken] += 1
    return {pair: tuple(entry) for pair, entry in results.items()}
