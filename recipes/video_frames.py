"""Video frame classification: name the handwritten digit in every frame of a clip.

Synchronous many-to-many on images: each clip is a short video of a real
handwritten digit (scikit-learn's 8x8 scans, `keras_rnn_lab.data.moving_digits`)
bouncing across a blank canvas; part way through, the digit is swapped for
one of another class, so the answer changes over time.  A small CNN reads
every frame on its own (`TimeDistributed`), a recurrent layer carries what it
has seen from frame to frame, and a Dense layer answers at every frame:

    frames (batch, frames, height, width, 1)
      -> TimeDistributed(Conv2D -> MaxPooling2D -> Conv2D -> MaxPooling2D -> Flatten -> Dense)
      -> LSTM | GRU | SimpleRNN (return_sequences=True)
      -> Dense(10) logits at every frame

    python -m recipes.video_frames                    # LSTM, digits
    python -m recipes.video_frames --cell gru
    python -m recipes.video_frames --target motion    # label the direction of motion instead
    python -m recipes.video_frames --preset tiny      # seconds, for a smoke test

What to expect (default preset, 1 to 1.5 minutes on two CPU cores): an LSTM
names the digit in about 98% of the held-out test frames (unseen handwriting);
with `--target motion` (9 classes: 8 directions and "still", which no single
frame can show) about 99.8%.  The README has the measured tables.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.data import moving_digits
from keras_rnn_lab.data.moving_digits import DIGIT_CLASSES, DIGIT_SIZE, MOTION_NAMES, SPLITS, TARGETS
from keras_rnn_lab.serving import export
from keras_rnn_lab.training import (
    Recipe,
    TrainingConfig,
    add_common_arguments,
    check_positive_int,
    check_split_fractions,
    common_overrides,
    compile_for_classes,
    config_from_preset,
    make_optimizer,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation

# Inference keeps no activations, so big batches are cheap and fast.
EVALUATION_BATCH_SIZE = 256


@dataclasses.dataclass
class Config(TrainingConfig):
    """Everything one training run depends on.  The shared training fields and
    their checks come from TrainingConfig."""

    cell: str = "lstm"  # carries the digit (or position) from frame to frame
    units: int = 64  # the state only has to hold a class and a little evidence
    target: str = "digit"  # "digit": which digit is shown; "motion": where it moved since the last frame
    canvas_size: int = 16  # room for the 8x8 digit to travel 8 pixels each way
    frames: int = 10  # long enough for a switch with several frames on either side
    digits_per_clip: int = 2  # the clip switches digit (always to another class) at random frames
    max_speed: int = 2  # pixels per frame along each axis; velocity (0, 0) is never drawn
    validation_fraction: float = 0.15  # of each digit's source images, held out for early stopping
    test_fraction: float = 0.15  # of each digit's source images, held out for the reported numbers
    train_clips: int = 4_000  # 40,000 frames; each training image shows up ~6 times, moving differently
    validation_clips: int = 500
    test_clips: int = 1_000  # 10,000 frames: 0.1% resolution per frame, 1% per frame position
    filters: tuple = (16, 32)  # the two Conv2D layers: enough for 8x8 digits, cheap on 2 cores
    frame_features: int = 64  # Dense after the CNN: what the recurrent layer sees of each frame
    epochs: int = 30  # measured: validation loss still improves slowly at epoch 17-20
    batch_size: int = 64
    learning_rate: float = 3e-3  # Adam
    patience: int = 4  # epochs without a better val_loss before stopping (best weights kept); the rate drops after 2

    def __post_init__(self):
        super().__post_init__()
        if self.target not in TARGETS:
            raise ValueError(f"Argument `target` must be one of {list(TARGETS)}; received {self.target!r}.")
        for name in ("frame_features", "train_clips", "validation_clips", "test_clips"):
            check_positive_int(name, getattr(self, name))
        moving_digits.check_clip_shape(self.canvas_size, self.frames, self.digits_per_clip, self.max_speed)
        check_split_fractions(self.validation_fraction, self.test_fraction)
        if not (isinstance(self.filters, (tuple, list)) and len(self.filters) == 2):
            raise TypeError(f"Argument `filters` must be a pair of positive ints; received {self.filters!r}.")
        self.filters = tuple(check_positive_int("filters", f) for f in self.filters)

    @property
    def num_classes(self):
        return DIGIT_CLASSES if self.target == "digit" else len(MOTION_NAMES)


# Overrides of Config's defaults.  `tiny` is for tests: a few hundred short
# clips on a small canvas learn well above chance in seconds.
PRESETS = {
    "tiny": {
        "units": 16,
        "canvas_size": 12,
        "frames": 6,
        "train_clips": 400,
        "validation_clips": 60,
        "test_clips": 60,
        "filters": (8, 16),
        "frame_features": 32,
        "epochs": 8,
        "batch_size": 32,
        "learning_rate": 1e-2,
        "patience": 4,
    },
    "default": {},
}


@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history: per-epoch "loss", "accuracy", "val_loss", ...
    accuracy: dict  # split name -> per-frame accuracy
    by_position: np.ndarray  # (frames,) test accuracy at each frame position
    by_age: np.ndarray  # (frames,) test accuracy by frames the current digit has been shown (1, 2, ...); nan if none
    seconds: float  # wall time of `train`: data, model, fit and evaluation


# --- data ------------------------------------------------------------------------------
def load_data(config):
    """{"train", "validation", "test"} -> `moving_digits.Clips`, determined by
    `config.seed`: the source images are split first, and each split's clips
    draw only from its own images."""
    return moving_digits.load_splits(
        config.seed,
        {name: getattr(config, f"{name}_clips") for name in SPLITS},
        config.canvas_size,
        config.frames,
        config.digits_per_clip,
        config.max_speed,
        config.target,
        config.validation_fraction,
        config.test_fraction,
    )


# --- model -----------------------------------------------------------------------------
def build_model(config, data=None):
    """A per-frame CNN, a recurrent layer over the frames, logits at every frame;
    compiled (`data` is not needed: the Config fixes every shape).

    The number of frames is fixed (`config.frames`), not None: in Keras 3.15
    TimeDistributed over an unknown time axis loops over the *batch* size
    (`ops.arange(ops.shape(inputs)[0])` taken before its transpose), which fails
    or silently returns (batch, batch, ...) whenever the two differ.  A static
    axis takes its Python loop over the frames instead.
    """
    first, second = config.filters
    frame_encoder = keras.Sequential(  # one frame (canvas, canvas, 1) -> (frame_features,)
        [
            keras.Input((config.canvas_size, config.canvas_size, 1)),
            keras.layers.Conv2D(first, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(second, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            # Flatten, not global pooling: the motion target needs to know *where* the digit is.
            keras.layers.Flatten(),
            keras.layers.Dense(config.frame_features, activation="relu"),
        ],
        name="frame_encoder",
    )
    frames = keras.Input(
        (config.frames, config.canvas_size, config.canvas_size, 1), name="frames"
    )  # (batch, frames, H, W, 1)
    x = keras.layers.TimeDistributed(frame_encoder, name="per_frame_cnn")(frames)  # (batch, frames, frame_features)
    x = recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        return_sequences=True,
        name="recurrent",
        **layer_regularisation(config),
    )(x)
    logits = keras.layers.Dense(config.num_classes, name="logits")(x)  # (batch, frames, classes)
    model = keras.Model(frames, logits, name=f"video_frames_{config.target}_{config.cell}")
    return compile_for_classes(model, make_optimizer(config))


# --- training --------------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` on the training clips, early stopping on the validation clips."""
    train, validation = data["train"], data["validation"]
    return {
        "x": train.frames,
        "y": train.labels,
        "batch_size": config.batch_size,
        "validation_data": (validation.frames, validation.labels),
    }


def callbacks(config):
    """Validation loss is noisy at this learning rate; a smaller step (after 2
    flat epochs) settles it before early stopping gives up."""
    return stop_early("val_loss", config.patience, reduce_lr_patience=2)


RECIPE = Recipe.of(
    __name__,
    count_examples=lambda data: int(data["train"].labels.size),
    example_unit="training frames",
    callbacks=callbacks,
)


def train(config, verbose=0):
    """Fit on the training clips (early stopping on validation), then measure every split."""
    start = time.perf_counter()
    data, model, history = RECIPE.train_new_model(config, verbose=verbose)
    correct = {
        name: predict_classes(model, clips.frames) == clips.labels for name, clips in data.items()
    }  # (n, frames)
    accuracy = {name: float(right.mean()) for name, right in correct.items()}
    by_position, by_age = frame_accuracy(correct["test"], data["test"].image_index)
    return TrainResult(config, model, history.history, accuracy, by_position, by_age, time.perf_counter() - start)


# --- evaluation ------------------------------------------------------------------------
def predict_classes(model, frames):
    """(n, frames, H, W, 1) -> (n, frames) most likely class at every frame."""
    return np.argmax(model.predict(frames, batch_size=EVALUATION_BATCH_SIZE, verbose=0), axis=-1)


def frame_accuracy(correct, image_index):
    """Accuracy by frame position, and by how many frames the current digit has
    been on screen (1 = a digit's first frame, the clip's or just after a switch).

    correct, image_index: (n, frames).  Returns two (frames,) arrays; an age
    that never occurs is nan.
    """
    n, frames = correct.shape
    by_position = correct.mean(axis=0)
    age = np.ones((n, frames), dtype="int64")
    for t in range(1, frames):
        same = image_index[:, t] == image_index[:, t - 1]
        age[:, t] = np.where(same, age[:, t - 1] + 1, 1)
    by_age = np.array([correct[age == a].mean() if np.any(age == a) else np.nan for a in range(1, frames + 1)])
    return by_position, by_age


def format_report(result):
    """Per-frame accuracy on every split, then the test split by frame position
    and by frames since the digit appeared."""
    config = result.config
    epochs = len(result.history["loss"])
    splits = "  ".join(f"{name} {100 * result.accuracy[name]:.2f}%" for name in SPLITS)
    frames = range(1, config.frames + 1)
    lines = [
        f"{config.cell} ({'keras' if config.builtin else 'ours'}), target {config.target}, seed {config.seed}: "
        f"{epochs} epochs, {result.seconds:.1f} s",
        f"per-frame accuracy: {splits}",
        "test accuracy (%) by",
        f"  {'frame':<24}" + "".join(f"{t:>6}" for t in frames),
        f"  {'frame position':<24}" + "".join(f"{100 * a:>6.1f}" for a in result.by_position),
        f"  {'frames digit was shown':<24}"
        + "".join(f"{100 * a:>6.1f}" if a == a else f"{'-':>6}" for a in result.by_age),
    ]
    return "\n".join(lines)


def serving_endpoints(model):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "label_frames": frames
    (batch, frames, canvas, canvas, 1) with pixel values in [0, 1] ->
    probabilities, label_id and label for every frame (the digit "0"-"9",
    or with the motion target the direction, e.g. "up-left")."""
    classes = int(model.outputs[0].shape[-1])
    names = [str(digit) for digit in range(DIGIT_CLASSES)] if classes == DIGIT_CLASSES else MOTION_NAMES
    postprocess = export.classifier_outputs(names)
    return {"label_frames": export.array_endpoint(model, postprocess=postprocess, input_names=["frames"])}


def main(argv=None):
    """Train once and print the report; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.video_frames"), description=__doc__.split("\n", 1)[0]
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--target", choices=TARGETS, help="label each frame with its digit or its motion")
    parser.add_argument("--canvas-size", dest="canvas_size", type=int, help=f"canvas side in pixels (>= {DIGIT_SIZE})")
    parser.add_argument("--frames", type=int, help="frames per clip")
    parser.add_argument("--train-clips", dest="train_clips", type=int, help="training clips")
    args = parser.parse_args(argv)
    recipe_flags = {name: getattr(args, name) for name in ("target", "canvas_size", "frames", "train_clips")}
    with usage_errors(parser):  # the Config first, so a bad value stops the command before any data is made
        config = config_from_preset(Config, PRESETS, args.preset, **common_overrides(args), **recipe_flags)
    result = train(config, verbose=training.progress_verbosity())
    print(format_report(result))
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.video_frames"))
