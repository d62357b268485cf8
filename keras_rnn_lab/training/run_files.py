"""A run directory's files, read and written: metrics.csv (read, cut to the
epochs a backup counts), BackupAndRestore's epoch count (with Keras's .bkp
fallback), atomic small writes, the lock file and the loss plot.  `training.runs` decides
what a run does with them."""

import csv
import json
import os
import shutil
import socket
import time

from keras_rnn_lab.errors import RunError, first_line

try:
    import fcntl
except ImportError:  # not POSIX: no lock (documented in the README)
    fcntl = None


def finished_epochs(backup, command):
    """The epochs a killed fit finished, from BackupAndRestore's state in `backup`.

    A damaged state file falls back on the copy of the epoch before
    (`double_checkpoint`: weights and state, both restored); without one it is
    a RunError naming the file."""
    file = os.path.join(backup, "training_metadata.json")
    if not os.path.exists(file):
        return 0
    try:
        return read_epoch(file)
    except (ValueError, KeyError, TypeError) as error:
        damaged = error
    weights = os.path.join(backup, "latest.weights.h5")
    try:
        epoch = read_epoch(f"{file}.bkp")
    except (OSError, ValueError, KeyError, TypeError):
        epoch = None
    if epoch is None or not os.path.exists(f"{weights}.bkp"):
        raise RunError(f"{file!r} is damaged ({first_line(damaged)}); start again with: {command}") from None
    shutil.copy(f"{weights}.bkp", weights)
    shutil.copy(f"{file}.bkp", file)
    print(f"{file} is damaged ({first_line(damaged)}): resuming from the copy of the epoch before", flush=True)
    return epoch


def read_epoch(file):
    with open(file, encoding="utf-8") as handle:
        return int(json.load(handle)["epoch"])


def write_atomically(path, text):
    temporary = f"{path}.partial"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def keep_rows(metrics, count):
    """Keep the header and the first `count` rows of a CSV file."""
    if not os.path.exists(metrics):
        return
    with open(metrics, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    if len(lines) > count + 1:
        write_atomically(metrics, "".join(lines[: count + 1]))


def read_metrics(path):
    """{column: [float per epoch]} of a CSVLogger file, epochs in order (a resumed
    run's rows follow the killed run's)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        key: [float(row[key]) for row in rows if row.get(key) not in (None, "")] for key in (rows[0] if rows else {})
    }


def overfitting_epoch(losses, val_losses):
    """The 0-based epoch where overfitting begins: the best validation epoch,
    when later epochs lowered the training loss without beating it; else None."""
    if len(val_losses) < 2:
        return None
    best = min(range(len(val_losses)), key=val_losses.__getitem__)
    later = range(best + 1, len(val_losses))
    if not later or not any(losses[e] < losses[best] for e in later):
        return None
    return best


def plot_losses(metrics_path, png_path):
    """Training against validation loss per epoch, the start of overfitting marked."""
    if not os.path.exists(metrics_path):
        return None
    metrics = read_metrics(metrics_path)
    if not metrics.get("loss"):
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    epochs = [int(e) + 1 for e in metrics["epoch"]]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    axes.plot(epochs, metrics["loss"], marker="o", label="training loss")
    if metrics.get("val_loss"):
        axes.plot(epochs, metrics["val_loss"], marker="o", label="validation loss")
        start = overfitting_epoch(metrics["loss"], metrics["val_loss"])
        if start is not None:
            axes.axvline(
                epochs[start], color="grey", linestyle="--", label=f"overfitting begins after epoch {epochs[start]}"
            )
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    pyplot.close(figure)
    return png_path


def take_lock(path, name):
    """The open, OS-locked file PATH/NAME, holding this process's pid, host and
    start time; a RunError naming the holder when another process has it.
    (fcntl's lock dies with its process: a killed holder's is taken over.)"""
    try:
        handle = open(os.path.join(path, name), "a+")
    except OSError as error:
        raise RunError(f"run directory {path!r}: cannot write its lock file: {error.strerror}") from None
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise RunError(
                f"run directory {path!r} is in use by {holder or 'another process'}; wait for it to "
                "end, or choose another --run-dir"
            ) from None
    handle.seek(0)
    holder = handle.read().strip()  # read once the lock is ours: a holder that ended normally emptied it
    if holder:  # the OS freed the lock: its holder ended without releasing it (killed)
        print(f"{path}: taking over the lock of {holder}, which is no longer running", flush=True)
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    return handle
