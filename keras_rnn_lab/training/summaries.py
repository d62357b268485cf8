"""Text and images beside a run directory's TensorBoard curves.

While a run directory is active (`keras_rnn_lab.training.runs`), each fit's
RunRecorder logs its scalars with keras.callbacks.TensorBoard into
RUN/NAME/logs (in train/ and validation/).  These two write into RUN/NAME/logs
itself, so `tensorboard --logdir RUN` shows them beside the curves (the TEXT
and IMAGES tabs, run "NAME/logs"):

    log_text(model, step, tag, text)    e.g. char_lm's samples as training goes
    log_png(model, step, tag, png)      a PNG file (path or bytes) or an image array (height, width[, channels])

`model` picks the folder: a Keras model (the run's folder for it, the one its
RunRecorder writes) or a folder name, for a recipe that fits no model.  `step`:
the epoch, 0-based, as Keras's TensorBoard callback numbers its epoch scalars.
Without an active run directory they write nothing and return None; with one,
the directory they wrote to.  TensorBoard renders text as Markdown (its
"Enable Markdown" switch shows the lines as printed).

TensorFlow-only (`tf.summary`), as Keras's TensorBoard callback is.
"""

import os

import numpy as np
import tensorflow as tf

from keras_rnn_lab.training import runs


def log_dir(model):
    """RUN/NAME/logs of the active run for `model` (a Keras model or a folder name), or None."""
    run = runs.current()
    if run is None:
        return None
    if not isinstance(model, str):
        model = run.folder_for(model)
    run.open()
    run.begin_fit()  # what is written here is kept like a fit's (no-op once a fit began)
    return os.path.join(run.path, model, "logs")


def log_text(model, step, tag, text):
    """`text` (a string) as the text summary `tag` at `step`; see the module docstring."""
    if not isinstance(text, str):
        raise TypeError(f"Argument `text` must be a string; received {type(text).__name__} {text!r:.60}.")
    return _write(model, lambda: tf.summary.text(tag, tf.constant(text), step=_step(step)))


def log_png(model, step, tag, png):
    """An image summary `tag` at `step`: `png` a PNG file's path or bytes, or a uint8
    (or [0, 1] float) array of shape (height, width) or (height, width, 1 | 3 | 4)."""
    pixels = _pixels(png)
    return _write(model, lambda: tf.summary.image(tag, pixels[np.newaxis], step=_step(step)))


def _write(model, summary):
    directory = log_dir(model)
    if directory is None:
        return None
    writer = tf.summary.create_file_writer(directory)
    try:
        with writer.as_default():
            summary()
    finally:
        writer.close()  # flushed now: a killed run keeps what it logged
    return directory


def _step(step):
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"Argument `step` must be an int >= 0 (the epoch); received {step!r}.")
    return int(step)


def _pixels(png):
    """(height, width, channels) pixels of a PNG path, PNG bytes or an image array."""
    if isinstance(png, (str, os.PathLike)):
        with open(png, "rb") as file:
            png = file.read()
    if isinstance(png, bytes):
        pixels = tf.io.decode_png(png).numpy()  # channels as stored: 1, 2 (grey and alpha), 3 or 4
        return pixels if pixels.shape[-1] != 2 else tf.io.decode_png(png, channels=4).numpy()
    pixels = np.asarray(png)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Argument `png` must be a PNG path or bytes, or an array (height, width[, 1 | 3 | 4]); "
            f"received an array of shape {pixels.shape}."
        )
    return pixels
