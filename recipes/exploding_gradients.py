"""Exploding gradients and clipping: the same SimpleRNN trained without and with it.

The lecture's other failure of BPTT: when the recurrent weights are large, the
product of step Jacobians grows exponentially instead of shrinking, one
gradient is enormous, and one plain SGD step throws the weights so far that
the next loss is infinite or NaN.  Clipping rescales every gradient to at most
`clipnorm` (or clips each entry to [-clipvalue, clipvalue]) before the step:
the direction is kept, the step stays bounded, and training goes on.

The task: read 50 numbers from U(-1, 1), answer their sum / sqrt(50)
(mean squared error; answering 0 scores 1/3).  The model: a ReLU SimpleRNN of
32 units whose recurrent kernel is drawn from N(0, 0.25) (spectral radius about
1.4; the lecture's N(0, 0.1) gives about 0.6), trained by SGD at 0.01.

    python -m recipes.exploding_gradients                   # unclipped, then clipnorm 1
    python -m recipes.exploding_gradients --clipvalue 0.5   # clip entries instead
    python -m recipes.exploding_gradients --preset tiny     # seconds

What to expect (default preset): the unclipped run's loss is NaN after its
first batch and `TerminateOnNaN` ends it there; the clipped run's first epoch
averages ~1e8 (the first batches still explode forwards), then it trains to a
loss of ~0.12 in 5 epochs, well under the 0.33 of answering 0.
"""

import argparse
import dataclasses
import math
import sys

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.training import (
    TrainingConfig,
    add_common_arguments,
    check_positive_int,
    common_overrides,
    config_from_preset,
    make_optimizer,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation


@dataclasses.dataclass
class Config(TrainingConfig):
    """One run; the shared training fields and their checks come from TrainingConfig."""

    cell: str = "simple_rnn"  # the demo is about the plain recurrence; LSTM/GRU run too
    activation: str = "relu"  # unbounded: large weights explode forwards and backwards (tanh saturates instead)
    recurrent_stddev: float = 0.25  # N(0, 0.25) recurrent kernel: spectral radius ~1.4, "large"
    steps: int = 50  # sequence length: the growth compounds over every step
    train_size: int = 2048
    validation_size: int = 256
    epochs: int = 5
    optimizer: str = "sgd"  # a plain gradient step, as in the lecture; Adam's step is scale-free
    learning_rate: float = 0.01
    clipnorm: float = None  # None: no clipping (main() also runs a clipped twin)

    def __post_init__(self):
        super().__post_init__()
        for name in ("steps", "train_size", "validation_size"):
            check_positive_int(name, getattr(self, name))
        if not (isinstance(self.recurrent_stddev, (int, float)) and self.recurrent_stddev > 0):
            raise ValueError(
                f"Argument `recurrent_stddev` must be a positive float; received {self.recurrent_stddev!r}."
            )


PRESETS = {
    "tiny": dict(train_size=320, validation_size=64, epochs=3),
    "default": {},
}


def load_data(config):
    """{"train": (x, y), "validation": (x, y)}: x (n, steps, 1) from U(-1, 1), y = sum(x) / sqrt(steps)."""
    streams = np.random.SeedSequence(config.seed).spawn(2)
    data = {}
    for name, stream, size in zip(("train", "validation"), streams, (config.train_size, config.validation_size)):
        x = np.random.default_rng(stream).uniform(-1.0, 1.0, size=(size, config.steps, 1)).astype("float32")
        data[name] = (x, (x.sum(axis=1) / math.sqrt(config.steps)).astype("float32"))
    return data


def build_model(config):
    """(batch, steps, 1) -> (batch, 1), compiled with the Config's optimizer and clipping."""
    keras.utils.set_random_seed(config.seed)
    model = keras.Sequential(
        [
            keras.Input((None, 1)),
            recurrent_layer(
                config.cell,
                config.units,
                builtin=config.builtin,
                activation=config.activation,
                recurrent_initializer=keras.initializers.RandomNormal(stddev=config.recurrent_stddev),
                **layer_regularisation(config),
            ),
            keras.layers.Dense(1),
        ],
        name=f"exploding_{config.cell}",
    )
    model.compile(optimizer=make_optimizer(config), loss="mse")
    return model


def train(config, verbose=0):
    """Fit; returns History.history ("loss" per epoch, the last one NaN when the run diverged)."""
    data = load_data(config)
    model = build_model(config)
    history = model.fit(
        *data["train"],
        validation_data=data["validation"],
        batch_size=config.batch_size,
        epochs=config.epochs,
        callbacks=stop_early("val_loss", config.patience),  # TerminateOnNaN first
        verbose=verbose,
    )
    return history.history


def describe(name, history):
    losses = history["loss"]
    finite = all(math.isfinite(v) for v in losses)
    ending = f"final loss {losses[-1]:.3g}" if finite else "loss NaN/inf: stopped by TerminateOnNaN"
    return f"{name:<22} {len(losses):>2} epoch(s)  " + " ".join(f"{v:.3g}" for v in losses) + f"   -> {ending}"


def main(argv=None):
    """Train without clipping, then with (--clipnorm, default 1, or --clipvalue); print both."""
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.exploding_gradients"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    args = parser.parse_args(argv)
    if args.out is not None:
        parser.error("argument --out: exploding_gradients saves no model")
    overrides = common_overrides(args)
    clip = {k: overrides.pop(k) for k in ("clipnorm", "clipvalue")}
    if clip["clipnorm"] is None and clip["clipvalue"] is None:
        clip["clipnorm"] = 1.0
    with usage_errors(parser):
        plain = config_from_preset(Config, PRESETS, args.preset, **overrides)
        clipped = dataclasses.replace(plain, **clip)
    results = {"no clipping": train(plain)}
    label = ", ".join(f"{k} {v:g}" for k, v in clip.items() if v is not None)
    results[label] = train(clipped)
    for name, history in results.items():
        print(describe(name, history))
    print(f"(answering 0 scores {1 / 3:.3f})")
    return results


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.exploding_gradients"))
