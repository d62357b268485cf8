"""Callbacks the recipes train with: early stopping with the lecture's defaults,
a stop once a task is solved or its time budget is spent, and the state reset
of truncated BPTT."""

import math
import time

import keras

from keras_rnn_lab._validation import check_number
from keras_rnn_lab.errors import RunError
from keras_rnn_lab.training import runs


def stop_early(monitor="val_loss", patience=3, reduce_lr_patience=None, mode="auto", min_delta=0.0, stop_at=None):
    """The lecture's "train several epochs" with a stop: callbacks that end
    training when `monitor` stops improving (by more than `min_delta`) for
    `patience` epochs and keep the best epoch's weights; with
    `reduce_lr_patience`, first divide the learning rate by ~3 after that many
    flat epochs (a smaller step often finds more); with `stop_at`, also stop as
    soon as `monitor` reaches that value (a task solved needs no more epochs).
    A batch whose loss is NaN or infinite (exploding gradients) ends training
    at once (`StopOnDivergence`, which also says where); the best epoch's
    weights are still restored."""
    callbacks = [StopOnDivergence()]
    if reduce_lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.3, patience=reduce_lr_patience)
        )
    early = keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=patience, min_delta=min_delta, restore_best_weights=True
    )
    callbacks.append(early)
    if stop_at is not None:
        callbacks.append(StopAt(monitor, stop_at, mode=mode))
    # Inside an active run directory (keras-rnn-lab train --run-dir), every fit
    # also checkpoints, logs and can resume; first, so a restored epoch counts.
    return runs.active_callbacks(monitor, mode) + callbacks


class StopOnDivergence(keras.callbacks.TerminateOnNaN):
    """`TerminateOnNaN` that remembers where: `diverged` is None, or
    (epoch, batch, loss) of the first non-finite batch loss (epoch and batch
    1-based).  `check_diverged` turns it into the run's error."""

    def on_train_begin(self, logs=None):
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and self.diverged is None and not math.isfinite(float(loss)):
            self.diverged = (self._epoch + 1, batch + 1, float(loss))
        super().on_batch_end(batch, logs)


def check_diverged(callbacks, config=None):
    """A RunError if a `StopOnDivergence` among `callbacks` saw a non-finite
    loss: a diverged fit must not be reported (or saved) as a result."""
    for callback in callbacks:
        if isinstance(callback, StopOnDivergence) and getattr(callback, "diverged", None):
            epoch, batch, loss = callback.diverged
            rate = f" at learning rate {config.learning_rate:g}" if getattr(config, "learning_rate", None) else ""
            # In a run directory the changed setting is another configuration: say how to start again.
            where = " (with --fresh, or another --run-dir)" if runs.current() is not None else ""
            raise RunError(
                f"training diverged: the loss became {loss} in epoch {epoch}, batch {batch}{rate}; no result is "
                f"reported or saved. Lower --learning-rate, or clip the gradients (--clipnorm 1){where}."
            )


class StopAt(keras.callbacks.Callback):
    """Stops training after the first epoch whose `monitor` reaches `value`
    (mode "max": >= value; "min": <=; "auto": "max" for accuracies, else "min")."""

    def __init__(self, monitor, value, mode="auto"):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Argument `mode` must be 'auto', 'min' or 'max'; received {mode!r}.")
        self.monitor, self.value = monitor, float(value)
        self.higher_is_better = mode == "max" or (mode == "auto" and "acc" in monitor)

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        if (current >= self.value) if self.higher_is_better else (current <= self.value):
            self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """Ends training before it would run past `minutes`: after each epoch, stop
    when the time since the fit began plus the longest epoch so far exceeds
    the budget (so a run stays inside it, whatever the machine's speed).
    `stopped_after` is the number of epochs trained when it stopped, else None.

    With `decay_fraction` f > 0, the last f of the budget also anneals the
    learning rate, as the decay phase of a warmup-stable-decay schedule (Hu et
    al. 2024, MiniCPM) timed by the clock rather than by a step count the run
    cannot know in advance: from the rate in force when the phase begins, eta_0,

        eta(t) = eta_0 * (budget - t) / (f * budget)   for t > (1 - f) * budget,

    set before every batch (t: seconds since the fit began), so it would reach
    0 as the budget ends; the last epoch ends at most one epoch before that.
    A ReduceLROnPlateau beside it acts before the phase (its cuts are in eta_0)
    and is overruled inside it."""

    def __init__(self, minutes, decay_fraction=0.0):
        super().__init__()
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
            raise ValueError(f"Argument `minutes` must be a positive number; received {minutes!r}.")
        check_number("decay_fraction", decay_fraction, "[0, 1]", lambda f: 0 <= f <= 1)
        self.seconds = 60.0 * minutes
        self.decay_fraction = float(decay_fraction)
        self.stopped_after = None
        self.clock = time.perf_counter  # seconds; a test gives its own

    def on_train_begin(self, logs=None):
        self.began = self.epoch_began = self.clock()
        self.longest = 0.0
        self.stopped_after = None
        self.decay_from = None  # eta_0, once the decay phase has begun

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_began = self.clock()

    def on_train_batch_begin(self, batch, logs=None):
        if not self.decay_fraction:
            return
        left = self.seconds - (self.clock() - self.began)
        phase = self.decay_fraction * self.seconds
        if left >= phase:
            return
        optimizer = self.model.optimizer
        if self.decay_from is None:
            self.decay_from = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        optimizer.learning_rate = self.decay_from * max(left, 0.0) / phase

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self.longest = max(self.longest, now - self.epoch_began)
        if now - self.began + self.longest > self.seconds:
            self.model.stop_training = True
            self.stopped_after = epoch + 1


def recurrent_layers(layer):
    """Every `keras.layers.RNN` in `layer`: itself, inside nested models and
    inside wrappers (Bidirectional's two directions, TimeDistributed's layer)."""
    if isinstance(layer, keras.layers.RNN):
        return [layer]
    children = list(getattr(layer, "layers", None) or [])  # models
    children += [getattr(layer, name) for name in ("forward_layer", "backward_layer", "layer") if hasattr(layer, name)]
    return [rnn for child in children if isinstance(child, keras.layers.Layer) for rnn in recurrent_layers(child)]


class ResetStates(keras.callbacks.Callback):
    """Zeroes every stateful recurrent layer's state at the start of each epoch
    and of each evaluation, so no state crosses from one pass over the streams
    (or from training into validation) to the next.  Layers inside
    Bidirectional and nested models count too."""

    def _reset(self):
        for layer in recurrent_layers(self.model):
            if layer.stateful:
                layer.reset_states()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()
