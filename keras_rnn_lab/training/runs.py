"""Run directories: what a training run leaves behind, and resuming a killed one.

    keras-rnn-lab train parity --run-dir runs/parity1 --preset tiny

While a `RunDirectory` is active (`with runs.active(RunDirectory(path)):`),
every Config a recipe resolves is recorded and every `model.fit` whose
callbacks come from `training.stop_early` (every recipe's) also records,
per model (models are told apart by name; a second model of the same name in
one run gets NAME-2, and so on):

    PATH/config.json            the latest command's resolved Config(s), as JSON
    PATH/run.lock               the lock: the process using the directory
    PATH/NAME/metrics.csv       loss and metrics per epoch (a resumed fit appends)
    PATH/NAME/best.keras        the model at its best epoch (the stop's monitor)
    PATH/NAME/last.keras        the model after its last finished epoch
    PATH/NAME/logs/             TensorBoard logs (tensorboard --logdir PATH)
    PATH/NAME/loss.png          training against validation loss, overfitting marked
    PATH/NAME/finished.json     written when its fit ends (not killed, not diverged)
    PATH/backup/NAME/           keras.callbacks.BackupAndRestore's state while fitting

Rules that keep a run's work safe:

* One process at a time: the first one locks `run.lock` (an OS lock, so a
  killed process's lock is free again and the next run takes it over);
  another process gets a RunError naming the holder.
* Rerunning the same command after a kill continues from the last finished
  epoch (weights, optimizer state and epoch number come back; early
  stopping's patience count starts again).  The configuration must match
  config.json (the number of epochs may change): otherwise a RunError lists
  the fields that differ.  `fresh=True` (`--fresh`) starts again: when the
  first fit begins, the earlier run's backup and model folders are removed
  (nothing else in the directory is touched).
* A rerun that asks for no more epochs than were done, or reruns a finished
  fit, trains nothing: the model gets its best epoch's weights from
  best.keras, its history comes from metrics.csv, and every file is kept.
* A damaged checkpoint is a RunError naming the file, with the command that
  starts again.  Models are written atomically (`training.model_files`).

Nothing is created until the first Config is recorded (a usage error or
`--help` leaves no directory behind), and a directory this run created is
removed again if no fit began in it.
"""

import contextlib
import dataclasses
import json
import math
import os
import shutil
import weakref

import keras

from keras_rnn_lab.errors import RunError, first_line
from keras_rnn_lab.training import model_files
from keras_rnn_lab.training.run_files import (  # noqa: F401  (read_metrics, overfitting_epoch: runs' API too)
    finished_epochs,
    keep_rows,
    overfitting_epoch,
    plot_losses,
    read_metrics,
    take_lock,
    write_atomically,
)

_ACTIVE = []  # the active RunDirectory, innermost last
LOCK_FILE = "run.lock"
CONFIG_FILE = "config.json"
FINISHED_FILE = "finished.json"  # in a model's folder: its fit ended (not killed, not diverged)
UNCOMPARED_FIELDS = ("epochs",)  # a rerun may ask for more (or fewer) epochs of the same run


class RunDirectory:
    """One training run's directory (created when the first Config is recorded).

    recipe: recorded in the models it saves; fresh: start again (see `begin_fit`);
    command: the command line that starts it again, for error messages."""

    def __init__(self, path, recipe=None, fresh=False, command=None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"Argument `path` must be a directory path; received {path!r} of type {type(path).__name__}."
            )
        self.path = os.fspath(path)
        self.recipe, self.fresh = recipe, fresh
        self.command = command or f"the same command with --fresh (or another run directory than {self.path!r})"
        self._lock = None
        self._created = []  # the directories this run created, innermost first
        self._recorded = None  # config.json's entries when this run opened the directory
        self._entries = []  # the Configs this run recorded, in order
        self._folders = {}  # id(model) -> (a weak reference to the model, its folder name)
        self._names = set()  # every folder name this run gave a model
        self.fits_began = False
        self.fitted = set()  # folders fitted by this process

    # --- opening, locking, closing -------------------------------------------
    def open(self):
        """Create and lock the directory (once); a RunError if another process holds it."""
        if self._lock is not None:
            return
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunError(f"run directory {self.path!r} is a file; expected a directory (--run-dir)")
        self._created = []  # removed again (when still empty) if this run fits nothing
        top = os.path.abspath(self.path)
        while not os.path.exists(top):
            self._created.append(top)
            top = os.path.dirname(top)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise RunError(f"run directory {self.path!r} cannot be created: {error.strerror}") from None
        self._lock = take_lock(self.path, LOCK_FILE)
        # --fresh: the old configuration is not compared (nor read: it may be the damaged file);
        # the old run's files go when the first fit begins (`begin_fit`), not before a usage error.
        self._recorded = [] if self.fresh else self._read_configs()

    def begin_fit(self):
        """A fit starts recording here: with `fresh`, first remove the earlier run's
        files (its backup and model folders; nothing that is not a run's)."""
        if self.fits_began:
            return
        self.fits_began = True
        if not self.fresh:
            return
        for name in os.listdir(self.path):
            target = os.path.join(self.path, name)
            run_folder = os.path.isdir(target) and any(
                os.path.exists(os.path.join(target, file)) for file in ("metrics.csv", "best.keras", "last.keras")
            )
            if name == "backup" or run_folder:
                shutil.rmtree(target)

    def close(self):
        """Release the lock; remove the directory again if this run created it and fitted nothing."""
        if self._lock is None:
            return
        self._lock.seek(0)
        self._lock.truncate()  # kept, empty: removing a lock file others may hold open would split the lock
        self._lock.close()  # closing releases the OS lock
        self._lock = None
        if self._created and not self.fits_began:
            for folder in self._created:  # innermost first; one another run has used since stays
                if folder == os.path.abspath(self.path):
                    for name in (LOCK_FILE, CONFIG_FILE):
                        with contextlib.suppress(OSError):
                            os.remove(os.path.join(folder, name))
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only when empty

    # --- configs --------------------------------------------------------------
    def _read_configs(self):
        file = os.path.join(self.path, CONFIG_FILE)
        if not os.path.exists(file):
            return []
        try:
            with open(file, encoding="utf-8") as handle:
                configs = json.load(handle)
            if not isinstance(configs, list):
                raise ValueError("expected a list of configurations")
        except (ValueError, UnicodeDecodeError) as error:
            raise RunError(f"{file!r} is damaged ({error}); start again with: {self.command}") from None
        return configs

    def record_config(self, config):
        """Add `config` (a dataclass) to PATH/config.json; a RunError when it
        differs from the configuration recorded there in the same place."""
        entry = {"class": f"{type(config).__module__}.{type(config).__qualname__}", **dataclasses.asdict(config)}
        entry = json.loads(json.dumps(entry, default=str))  # tuples -> lists, as they read back
        if entry in self._entries:
            return
        self.open()
        index = len(self._entries)
        if index < len(self._recorded):
            self._check_same(self._recorded[index], entry, config)
        self._entries.append(entry)
        configs = self._entries + self._recorded[len(self._entries) :]
        write_atomically(os.path.join(self.path, CONFIG_FILE), json.dumps(configs, indent=2))

    def _check_same(self, recorded, entry, config):
        # A field added since the run was recorded (none there) matches while it holds its default.
        defaults = {f.name: f.default for f in dataclasses.fields(config)}
        keys = [k for k in {**recorded, **entry} if k not in UNCOMPARED_FIELDS]
        differ = [k for k in keys if recorded.get(k, defaults.get(k)) != entry.get(k)]
        if differ:
            shown = ", ".join(f"{k} {recorded.get(k)!r} there, {entry.get(k)!r} now" for k in differ[:6])
            more = f" and {len(differ) - 6} more" if len(differ) > 6 else ""
            raise RunError(
                f"run directory {self.path!r} holds a run with another configuration ({shown}{more}); rerun with its "
                f"settings to resume it, start again with --fresh, or choose another --run-dir"
            )

    # --- per model ------------------------------------------------------------
    def folder_for(self, model):
        """This run's folder name for `model`: its name, NAME-2 for a second model of that name."""
        key = id(model)
        known = self._folders.get(key)
        if known is None or known[0]() is not model:  # new, or a new model where a freed one lived
            name, n = model.name, 1
            while name in self._names:
                n += 1
                name = f"{model.name}-{n}"
            self._names.add(name)
            self._folders[key] = (weakref.ref(model), name)
        return self._folders[key][1]

    def callbacks(self, monitor="val_loss", mode="auto"):
        return [RunRecorder(self, monitor, mode)]

    def kept_history(self, model, epochs):
        """None when `model` should be fitted; else, after loading its best
        weights from an earlier process's run of it, a History of the epochs
        that run recorded (a rerun asking for no more epochs than done, or a
        finished fit)."""
        name = self.folder_for(model)
        if self.fresh or name in self.fitted:
            return None
        folder, backup = os.path.join(self.path, name), os.path.join(self.path, "backup", name)
        metrics_path, best = os.path.join(folder, "metrics.csv"), os.path.join(folder, "best.keras")
        if os.path.exists(backup):
            done = finished_epochs(backup, self.command)
            if done < epochs:
                return None  # a killed fit with epochs to go: BackupAndRestore resumes it
            state = f"trained {done} epochs before it was stopped; --epochs {epochs} asks for no more"
        elif os.path.exists(os.path.join(folder, FINISHED_FILE)) and os.path.exists(metrics_path):
            done = len(read_metrics(metrics_path).get("epoch", []))
            state = f"finished ({done} epochs) in an earlier run"
        else:
            return None
        self.fitted.add(name)
        if not os.path.exists(best):  # killed between two saves: the last epoch is the best there is
            best = os.path.join(folder, "last.keras")
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # so the saved optimizer state loads too
            model.load_weights(best)
        except Exception as error:
            raise RunError(
                f"{best!r} is damaged or holds another model ({first_line(error)}); start again with: {self.command}"
            ) from None
        print(
            f"{self.path}: {name} {state}: training nothing, using its best model ({best}); every file is kept "
            "(--fresh trains again)",
            flush=True,
        )
        history = keras.callbacks.History()
        metrics = read_metrics(metrics_path) if os.path.exists(metrics_path) else {}
        history.epoch = [int(e) for e in metrics.pop("epoch", [])]
        history.history = metrics
        history.set_model(model)
        return history


@contextlib.contextmanager
def active(run):
    """Record into `run` (a RunDirectory) inside the `with` block; its lock is released at the end."""
    _ACTIVE.append(run)
    try:
        yield run
    finally:
        _ACTIVE.remove(run)
        run.close()


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


def kept_history(model, epochs):
    """The active run's `RunDirectory.kept_history` (None without an active run)."""
    run = current()
    return run.kept_history(model, epochs) if run is not None else None


def _higher_is_better(monitor, mode):
    # Keras's ModelCheckpoint rule for mode "auto": accuracies and AUCs are maximised.
    return mode == "max" or (mode == "auto" and (monitor.endswith(("acc", "accuracy", "auc")) or "fmeasure" in monitor))


class RunRecorder(keras.callbacks.Callback):
    """Backup and restore, CSV, TensorBoard, best and last models for the
    model it is given (see the module docstring); a loss plot at the end."""

    def __init__(self, run, monitor="val_loss", mode="auto"):
        super().__init__()
        self.run, self.monitor, self.mode = run, monitor, mode
        self._inner = []

    def set_model(self, model):
        super().set_model(model)
        self.run.open()
        self.run.begin_fit()
        name = self.run.folder_for(model)
        self.run.fitted.add(name)
        self.folder = os.path.join(self.run.path, name)
        os.makedirs(self.folder, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.folder, FINISHED_FILE))  # this fit is not finished yet
        self._epochs_run = 0
        self.backup = os.path.join(self.run.path, "backup", name)
        metrics = os.path.join(self.folder, "metrics.csv")
        done = finished_epochs(self.backup, self.run.command) if os.path.exists(self.backup) else None
        if done is not None:
            keep_rows(metrics, done)  # a kill between the backup and the CSV row must not repeat or lose an epoch
        kept = read_metrics(metrics).get(self.monitor, []) if done and os.path.exists(metrics) else []
        self._diverged = False
        self.best = (max if _higher_is_better(self.monitor, self.mode) else min)(kept) if kept else None
        self._inner = [
            # First: it sets the starting epoch before any other callback runs.
            keras.callbacks.BackupAndRestore(self.backup, double_checkpoint=True),
            keras.callbacks.CSVLogger(metrics, append=done is not None),
            keras.callbacks.TensorBoard(os.path.join(self.folder, "logs")),
        ]
        for callback in self._inner:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self._inner:
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        try:
            self._inner[0].on_train_begin(logs)
        except Exception as error:  # truncated weights, a model that does not fit them
            weights = os.path.join(self.backup, "latest.weights.h5")
            raise RunError(
                f"cannot resume from {weights!r}: it is damaged or holds another model ({first_line(error)}); "
                f"start again with: {self.run.command}"
            ) from None
        for callback in self._inner[1:]:
            callback.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(v)) for v in logs.values() if isinstance(v, (int, float))):
            self._diverged = True  # keep the last good state and models; the fit reports the divergence
            return
        for callback in self._inner[1:]:  # CSV and TensorBoard
            callback.on_epoch_end(epoch, logs)
        recipe = self.run.recipe
        model_files.save_model(self.model, os.path.join(self.folder, "last.keras"), recipe)
        current = logs.get(self.monitor)
        if current is not None:
            better = self.best is None or (
                current > self.best if _higher_is_better(self.monitor, self.mode) else current < self.best
            )
            if better:
                self.best = current
                model_files.save_model(self.model, os.path.join(self.folder, "best.keras"), recipe)
        # The backup last: once it counts an epoch, everything else of that epoch is written
        # (a kill before it trains the epoch again, and its metrics row is cut on resume).
        self._inner[0].on_epoch_end(epoch, logs)
        self._epochs_run += 1

    def on_train_end(self, logs=None):
        # BackupAndRestore deletes the backup at the end of a fit: not after a diverged
        # fit, nor after one that ran no epoch (a rerun asking for no more than were done).
        finished = not self._diverged and self._epochs_run > 0
        for callback in self._inner if finished else self._inner[1:]:
            callback.on_train_end(logs)
        if finished:
            epochs = len(read_metrics(os.path.join(self.folder, "metrics.csv")).get("epoch", []))
            write_atomically(os.path.join(self.folder, FINISHED_FILE), json.dumps({"epochs": epochs}))
        plot_losses(os.path.join(self.folder, "metrics.csv"), os.path.join(self.folder, "loss.png"))


def _forward(name):
    def forward(self, *args, **kwargs):
        for callback in self._inner:
            getattr(callback, name)(*args, **kwargs)

    forward.__name__ = name
    return forward


for _hook in (
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
):
    setattr(RunRecorder, _hook, _forward(_hook))
