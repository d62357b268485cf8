"""long_memory's report: the accuracy table (median over seeds, runs solved)
and the plot of accuracy against the distance L."""

import numpy as np


def format_table(records, tasks, solved_bar):
    """Accuracy (%) per configuration (rows) and L (columns), one block per task.

    A configuration run with several seeds shows the median accuracy and how
    many of its runs reached `solved_bar`, e.g. "50.7% 2/5": a run sits at chance
    or jumps to 100% within an epoch, so the median says what a typical run
    does and the count how often one escapes.  The latest run of a
    configuration and seed wins.
    """
    lines = []
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        if not rows:
            continue
        lengths = sorted({r["length"] for r in rows})
        labels = list(dict.fromkeys(r["label"] for r in rows))
        runs = runs_by_seed(rows)
        seeded = any(len(by_seed) > 1 for by_seed in runs.values())
        width = 14 if seeded else 9
        header = f"{task:<24}" + "".join(f"{'L=' + str(n):>{width}}" for n in lengths)
        lines += [header, "-" * len(header)]
        for label in labels:
            entries = [_summary(runs.get((label, n)), seeded, solved_bar) for n in lengths]
            lines.append(f"{label:<24}" + "".join(f"{e:>{width}}" for e in entries))
        if seeded:
            lines.append(f"(median over seeds; solved: runs at or above {100 * solved_bar:g}%)")
        lines.append("")
    return "\n".join(lines)


def runs_by_seed(records):
    """{(label, L): {seed: accuracy}}; a later record of the same seed replaces an earlier one."""
    runs = {}
    for r in records:
        runs.setdefault((r["label"], r["length"]), {})[r.get("seed")] = r["accuracy"]
    return runs


def _summary(by_seed, seeded, solved_bar):
    if not by_seed:
        return "-"
    accuracies = list(by_seed.values())
    text = f"{100 * float(np.median(accuracies)):.1f}%"
    if seeded:
        text += f" {sum(a >= solved_bar for a in accuracies)}/{len(accuracies)}"
    return text


def plot(records, path, tasks):
    """Accuracy against L (log axis), one line per configuration, one panel per task;
    the median over seeds where a configuration ran with several."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in tasks if any(r["task"] == t for r in records)]
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        runs = runs_by_seed([r for r in records if r["task"] == task])
        rows = {key: float(np.median(list(by_seed.values()))) for key, by_seed in runs.items()}
        for label in dict.fromkeys(label for label, _ in rows):
            points = sorted((n, a) for (lab, n), a in rows.items() if lab == label)
            axis.plot(
                [n for n, _ in points],
                [100 * a for _, a in points],
                marker="o",
                label=label,
                linestyle="--" if label.endswith("lecture") else "-",
            )
        axis.axhline(50 if task == "distractor" else 8, color="grey", linewidth=0.8, linestyle=":")
        axis.set(
            xscale="log",
            xlabel="L (steps between the information and the answer)",
            ylabel="accuracy (%)",
            title=task,
            ylim=(0, 102),
        )
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
