"""sentiment's report: test accuracy and the confusion matrix of the recurrent
model and of the bag-of-words baseline."""

import numpy as np


def confusion_matrix(labels, predictions, num_classes=2):
    """(num_classes, num_classes) counts: entry [t, p] = examples of true class t predicted p."""
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def format_report(result):
    """Test accuracy and confusion matrix of both models of a sentiment
    TrainResult, one after the other."""
    config, names = result.config, result.data.class_names
    layer = f"{'bidirectional ' if config.bidirectional else ''}{config.cell}"
    layer += f" x{config.layers}" if config.layers > 1 else ""
    layer += " (keras built-in)" if config.builtin else " (keras_rnn_lab)"
    rows = [(f"recurrent: {layer}", result.recurrent), ("baseline: word average", result.baseline)]
    width = max(len(str(name)) for name in names) + len("true ")
    lines = [f"test split of {result.data.source}: {len(result.data.test)} examples, rows = true, columns = predicted"]
    for title, model_result in rows:
        epochs = len(model_result.history["loss"])
        run = f"{epochs} epoch{'s' if epochs != 1 else ''}, {model_result.seconds:.0f} s"
        lines.append("")
        lines.append(f"{title}: test accuracy {100 * model_result.accuracy:.2f}% ({run})")
        lines.append(" " * width + "".join(f"{'pred ' + str(name):>16}" for name in names))
        for name, counts in zip(names, model_result.confusion):
            lines.append(f"{'true ' + str(name):<{width}}" + "".join(f"{count:>16}" for count in counts))
    return "\n".join(lines)
