"""Run directories: what a training run leaves behind, and resuming a killed one.

    keras-rnn-lab train parity --run-dir runs/parity1 --preset tiny

While a `RunDirectory` is active (`with runs.active(RunDirectory(path)):`),
every Config a recipe resolves is recorded and every `model.fit` whose
callbacks come from `training.stop_early` (every recipe's) also records,
per model (models are told apart by name):

    PATH/config.json            the resolved Config(s), as JSON
    PATH/NAME/metrics.csv       loss and metrics per epoch (a resumed fit appends; a new one starts it again)
    PATH/NAME/best.keras        the model at its best epoch (the stop's monitor)
    PATH/NAME/last.keras        the model after its last finished epoch
    PATH/NAME/logs/             TensorBoard logs (tensorboard --logdir PATH)
    PATH/NAME/loss.png          training against validation loss, overfitting marked
    PATH/backup/NAME/           keras.callbacks.BackupAndRestore's state while fitting

Rerunning the same command after a kill continues from the last finished
epoch (weights, optimizer state and epoch number come back; early stopping's
patience count starts again).  Vocabularies live inside the `.keras` models.
"""

import contextlib
import csv
import dataclasses
import json
import os

import keras

_ACTIVE = []  # the active RunDirectory, innermost last


class RunDirectory:
    """One training run's directory (created if missing)."""

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"Argument `path` must be a directory path; received {path!r} of type {type(path).__name__}."
            )
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)

    def record_config(self, config):
        """Add `config` (a dataclass) to PATH/config.json, once."""
        file = os.path.join(self.path, "config.json")
        configs = json.load(open(file)) if os.path.exists(file) else []
        entry = {"class": f"{type(config).__module__}.{type(config).__qualname__}", **dataclasses.asdict(config)}
        entry = json.loads(json.dumps(entry, default=str))  # tuples -> lists, as they read back
        if entry not in configs:
            configs.append(entry)
            with open(file, "w") as handle:
                json.dump(configs, handle, indent=2)

    def callbacks(self, monitor="val_loss", mode="auto"):
        return [RunRecorder(self, monitor, mode)]


@contextlib.contextmanager
def active(run):
    """Record into `run` (a RunDirectory) inside the `with` block."""
    _ACTIVE.append(run)
    try:
        yield run
    finally:
        _ACTIVE.remove(run)


def current():
    """The active RunDirectory, or None."""
    return _ACTIVE[-1] if _ACTIVE else None


def active_callbacks(monitor="val_loss", mode="auto"):
    """The active run's callbacks for one fit ([] when no run is active)."""
    run = current()
    return run.callbacks(monitor, mode) if run is not None else []


def record_config(config):
    """Record a resolved Config in the active run, if any."""
    run = current()
    if run is not None:
        run.record_config(config)


class RunRecorder(keras.callbacks.Callback):
    """Backup and restore, CSV, TensorBoard, best and last models for the
    model it is given (see the module docstring); a loss plot at the end."""

    def __init__(self, run, monitor="val_loss", mode="auto"):
        super().__init__()
        self.run, self.monitor, self.mode = run, monitor, mode
        self._inner = []

    def set_model(self, model):
        super().set_model(model)
        self.folder = os.path.join(self.run.path, model.name)
        os.makedirs(self.folder, exist_ok=True)
        backup = os.path.join(self.run.path, "backup", model.name)
        resuming = os.path.exists(backup)  # a killed fit left its state: continue its metrics too
        self._inner = [
            # First: it sets the starting epoch before any other callback runs.
            keras.callbacks.BackupAndRestore(backup),
            keras.callbacks.CSVLogger(os.path.join(self.folder, "metrics.csv"), append=resuming),
            keras.callbacks.TensorBoard(os.path.join(self.folder, "logs")),
            keras.callbacks.ModelCheckpoint(
                os.path.join(self.folder, "best.keras"), monitor=self.monitor, mode=self.mode, save_best_only=True
            ),
            keras.callbacks.ModelCheckpoint(os.path.join(self.folder, "last.keras")),
        ]
        for callback in self._inner:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self._inner:
            callback.set_params(params)

    def on_train_end(self, logs=None):
        for callback in self._inner:
            callback.on_train_end(logs)
        plot_losses(os.path.join(self.folder, "metrics.csv"), os.path.join(self.folder, "loss.png"))


def _forward(name):
    def forward(self, *args, **kwargs):
        for callback in self._inner:
            getattr(callback, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


for _hook in (
    "on_train_begin",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
):
    setattr(RunRecorder, _hook, _forward(_hook))


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
