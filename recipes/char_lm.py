"""Character language model: the lecture's "hello" and Shakespeare's sonnets.

Synchronous many-to-many: at every step the model reads one character and
predicts the next,

    characters -> StringLookup -> Embedding -> LSTM | GRU | SimpleRNN -> Dense(vocabulary)

trained with the cross-entropy summed over the time steps of each window (the
lecture's loss) and reported as bits per character (mean cross-entropy / ln 2).

    python -m recipes.char_lm --preset hello          # learns "hello" in seconds
    python -m recipes.char_lm                         # the sonnets, minutes on 2 cores
    python -m recipes.char_lm --preset shakespeare    # Tiny Shakespeare (shipped), 20 minutes at most
    python -m recipes.char_lm --text my.txt --out my.keras
    python -m recipes.char_lm --tbptt                 # truncated BPTT: state carried across windows
    python -m recipes.char_lm sample --model my.keras --prime "From fairest" --length 500 --temperature 0.8

A callback prints samples as training goes, from the untrained model to the
last epoch: gibberish first, then words, then line structure, as on the
lecture's "at first ... train more" slide.  Expect
about 2.3-2.4 bits per character on the sonnets' last 10% after the default run.

With `--tbptt` the text is cut into `batch_size` streams read window after
window by a stateful copy of the model: each window starts from the state the
previous window of its stream ended in (context longer than one window), while
each gradient stops at its window's start (truncated BPTT: memory and time per
step stay those of one window).  States are reset at every epoch and before
validation; the trained weights then go into the ordinary (stateless) model.
"""

import argparse
import dataclasses
import math
import numbers
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_rnn_lab import training
from keras_rnn_lab.data import text_data
from keras_rnn_lab.decoding.generation import TextGenerator
from keras_rnn_lab.training import regularization
from recipes.parts.char_lm_samples import PrintSamples
from recipes.parts.char_lm_serving import numeric_endpoints, sample_command, serving_endpoints  # noqa: F401

HELLO_TEXT = "hello " * 40
SMALL_TEXT = 200_000  # characters: below, windows overlap (stride 10) to get enough of them


@dataclasses.dataclass
class Config(training.TrainingConfig):
    """The shared training fields (TrainingConfig) and this recipe's own."""

    units: int = 256  # the size the lecture's demo and the reference run use
    embedding_dim: int = 64
    dropout: float = 0.2  # on the recurrent layer's inputs; the sonnets overfit without it
    output_dropout: float = 0.3  # on its outputs, before the softmax layer
    window: int = 100  # characters of context per training window
    # Characters between window starts; None: 10 (overlapping, 10x more windows)
    # for a text under SMALL_TEXT characters like the sonnets, else `window`.
    stride: int = None
    tbptt: bool = False  # truncated BPTT: consecutive windows, state carried, gradients cut at window starts
    batch_size: int = 64
    epochs: int = 30
    learning_rate: float = 3e-3
    clipnorm: float = 5.0  # clipping against exploding gradients, as this recipe always did; None: off
    validation_fraction: float = 0.1  # the last 10% of the text, contiguous
    text: str = None  # literal training text (the hello preset); else the sources below
    text_path: str = None
    tfds_name: str = None
    corpus: str = "sonnets"  # the shipped corpus when none of the above: sonnets or tiny_shakespeare
    max_characters: int = None  # keep only the first N characters (tests)
    sample_every: int = 5  # epochs between printed samples; 0 = never
    max_minutes: float = None  # a time budget: stop before an epoch would end past it (training.TimeBudget)
    lr_decay_fraction: float = 0.0  # with max_minutes: the budget's last fraction anneals the learning rate to 0
    sample_prime: str = "From fairest"

    def __post_init__(self):
        super().__post_init__()
        for name in ("embedding_dim", "window"):
            training.check_positive_int(name, getattr(self, name))
        if self.stride is not None:
            training.check_positive_int("stride", self.stride)
        if self.corpus not in text_data.CORPUS_BUILDERS:
            raise ValueError(
                f"Argument `corpus` must be one of {sorted(text_data.CORPUS_BUILDERS)}; received {self.corpus!r}."
            )
        training.check_rate("output_dropout", self.output_dropout)
        if not isinstance(self.tbptt, bool):
            raise TypeError(f"Argument `tbptt` must be True or False; received {self.tbptt!r}.")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 <= fraction < 1.0:
            raise ValueError(f"Argument `validation_fraction` must be a number in [0, 1); received {fraction!r}.")
        if self.max_characters is not None:
            training.check_positive_int("max_characters", self.max_characters)
        if isinstance(self.sample_every, bool) or not isinstance(self.sample_every, int) or self.sample_every < 0:
            raise ValueError(f"Argument `sample_every` must be an int >= 0 (0: never); received {self.sample_every!r}.")
        if self.max_minutes is not None:
            training.check_number("max_minutes", self.max_minutes, "(0, inf)", lambda m: 0 < m < math.inf)
        training.check_number("lr_decay_fraction", self.lr_decay_fraction, "[0, 1]", lambda f: 0 <= f <= 1)
        if self.lr_decay_fraction and self.max_minutes is None:
            raise ValueError("Argument `lr_decay_fraction` needs `max_minutes`: the decay is timed by the budget.")
        if not isinstance(self.sample_prime, str) or not self.sample_prime:
            raise ValueError(f"Argument `sample_prime` must be a non-empty string; received {self.sample_prime!r}.")


PRESETS = {
    "hello": dict(
        text=HELLO_TEXT,
        units=16,
        embedding_dim=8,
        dropout=0.0,
        output_dropout=0.0,
        window=5,
        stride=1,
        batch_size=16,
        epochs=40,
        learning_rate=1e-2,
        validation_fraction=0.0,
        sample_every=0,
        sample_prime="h",
    ),
    "tiny": dict(
        max_characters=3000,
        units=32,
        embedding_dim=8,
        window=20,
        stride=5,
        batch_size=32,
        epochs=3,
        learning_rate=1e-2,
        sample_every=0,
    ),
    # The benchmark corpus in 20 minutes on two cores: non-overlapping windows, less dropout
    # (ten times the sonnets' text), the rate annealed to 0 over the last 30% (README: the
    # run).  LSTM 512 learnt more per step but at 3.2x the step time: worse in 20 minutes.
    "shakespeare": dict(
        corpus="tiny_shakespeare",
        dropout=0.1,
        output_dropout=0.1,
        epochs=60,
        max_minutes=20.0,
        lr_decay_fraction=0.3,
        sample_prime="KING RICHARD III:\n",
    ),
    "default": {},
}


# --- data ----------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """What `load_data` returns: the text, cut in two, and its characters."""

    train_text: str
    validation_text: str  # the last validation_fraction of the text; "" when that is 0 (hello)
    vocabulary: list  # the distinct characters of both, sorted; the lookup adds out-of-vocabulary


def load_data(config):
    """The training text (config.text, a file, TFDS or the shipped sonnets),
    its last `validation_fraction` held out, and its vocabulary."""
    if config.text is not None:
        text = config.text
    else:
        text = text_data.load_text(text_path=config.text_path, tfds_name=config.tfds_name, corpus=config.corpus)
    if config.max_characters is not None:
        text = text[: config.max_characters]
    train_text, validation_text = text_data.split_text(text, config.validation_fraction)
    if config.validation_fraction > 0 and not validation_text:
        raise ValueError(
            f"Argument `validation_fraction`: {config.validation_fraction} of {len(text)} characters holds out "
            "none; expected a longer text, or 0 to train without validation."
        )
    return Data(train_text, validation_text, text_data.char_vocabulary(train_text + validation_text))


def window_stride(config, data):
    """config.stride, or by default 10 for a text under SMALL_TEXT characters
    (overlapping windows: the sonnets give 8,600 rather than 860) and
    non-overlapping windows for a larger one (Tiny Shakespeare: 10,000)."""
    if config.stride is not None:
        return config.stride
    return 10 if len(data.train_text) + len(data.validation_text) < SMALL_TEXT else config.window


def windows_dataset(model, text, config, shuffle, stride):
    """Batches of (window characters, next-character ids) of `text`, reshuffled
    every epoch (seeded) when `shuffle` (see text_data.char_windows)."""
    windows = text_data.char_windows(text, config.window, stride, config.batch_size, config.seed if shuffle else None)
    return _with_target_ids(model, windows)


def stream_dataset(model, text, config):
    """Consecutive windows for truncated BPTT, in order (see training.stream_windows)."""
    inputs, targets = training.stream_windows(np.array(list(text)), config.window, config.batch_size)
    return _with_target_ids(model, tf.data.Dataset.from_tensor_slices((inputs, targets)))


def _with_target_ids(model, dataset):
    """(characters, next characters) -> (characters, next-character ids from `model`'s own lookup)."""
    lookup = model.get_layer("char_lookup")
    return dataset.map(lambda chars, next_chars: (chars, lookup(next_chars)), num_parallel_calls=tf.data.AUTOTUNE)


# --- model ---------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="recipes.char_lm")
def summed_cross_entropy(targets, logits):
    """The lecture's loss: cross-entropy of every step, summed over the window."""
    per_step = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return keras.ops.sum(per_step, axis=-1)


@keras.saving.register_keras_serializable(package="recipes.char_lm")
def bits_per_character(targets, logits):
    per_step = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return keras.ops.mean(per_step, axis=-1) / math.log(2.0)


def build_model(config, data, stateful=False):
    """characters (batch, time) strings -> logits (batch, time, vocabulary + OOV), compiled.

    `data`: what `load_data` returned, or just a vocabulary (a list of
    characters).  stateful: the truncated-BPTT twin, fixed to (batch_size,
    window) inputs, whose recurrent layer starts each batch from the state the
    last one ended in.
    """
    vocabulary = data.vocabulary if isinstance(data, Data) else list(data)
    lookup = keras.layers.StringLookup(vocabulary=vocabulary, num_oov_indices=1, mask_token=None, name="char_lookup")
    if stateful:
        characters = keras.Input((config.window,), batch_size=config.batch_size, dtype="string", name="characters")
    else:
        characters = keras.Input((None,), dtype="string", name="characters")
    x = keras.layers.Embedding(lookup.vocabulary_size(), config.embedding_dim, name="embedding")(lookup(characters))
    x = training.recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        return_sequences=True,
        stateful=stateful,
        name="recurrent",
        **regularization.layer_regularisation(config),
    )(x)
    x = keras.layers.Dropout(config.output_dropout, seed=config.seed)(x)
    logits = keras.layers.Dense(lookup.vocabulary_size(), name="logits")(x)
    model = keras.Model(characters, logits, name=f"char_lm_{config.cell}")
    model.compile(
        optimizer=training.make_optimizer(config),  # Adam, clipped at config.clipnorm
        loss=summed_cross_entropy,
        metrics=[keras.metrics.MeanMetricWrapper(bits_per_character, name="bits_per_char")],
    )
    return model


# --- training ------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` on overlapping windows of the training text, reshuffled every
    epoch, validated on the held-out text's windows (none for hello)."""
    stride = window_stride(config, data)
    validation = windows_dataset(model, data.validation_text, config, False, stride) if data.validation_text else None
    return {
        "x": windows_dataset(model, data.train_text, config, True, stride),
        "validation_data": validation,
        "shuffle": False,  # the windows dataset shuffles itself each epoch (fit cannot shuffle a tf.data.Dataset)
    }


def training_callbacks(config, monitor=None):
    """Samples as training goes, and the lecture's guidance: train several
    epochs, cut the learning rate ~3x after a flat one, stop when `monitor`
    (default val_loss, or loss with no validation text) stops improving."""
    monitor = monitor or _monitor(config)
    budget = [] if config.max_minutes is None else [training.TimeBudget(config.max_minutes, config.lr_decay_fraction)]
    samples = PrintSamples(config.sample_prime, config.sample_every)  # samples step the cell, stateful or not
    return [samples, *training.stop_early(monitor, config.patience, reduce_lr_patience=1), *budget]


def _monitor(config):
    return "val_loss" if config.validation_fraction > 0 else "loss"  # load_data holds out text iff > 0


RECIPE = training.Recipe.of(
    __name__,
    count_examples=lambda data: len(data.train_text),
    example_unit="training characters",  # every character is a prediction the loss scores
    callbacks=training_callbacks,
)


def train(config, out=None):
    """Train; returns (model, history).  Saves the best model to `out` (.keras) if given."""
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    model = build_model(config, data)
    if config.tbptt:
        return _train_truncated(config, data, model, out)
    # Ends with the best epoch's weights (early stopping's); the bar on a terminal, a line per epoch otherwise.
    history = RECIPE.fit(config, data, model, verbose=training.progress_verbosity())
    if out is not None:
        RECIPE.save_model(model, out)
    return model, history


def _train_truncated(config, data, model, out):
    """Truncated BPTT: fit a stateful twin on consecutive windows, then hand its
    weights to the stateless `model` (for sampling and saving)."""
    stateful = build_model(config, data, stateful=True)
    validation = None
    if len(data.validation_text) > config.batch_size * config.window:
        validation = stream_dataset(stateful, data.validation_text, config)
    elif data.validation_text:
        print(
            f"tbptt: the validation text ({len(data.validation_text)} characters) fills no window of every one of "
            f"{config.batch_size} streams; monitoring the training loss instead."
        )
    monitor = "val_loss" if validation is not None else "loss"
    history = training.fit_checked(  # model.fit, with the run directory's rules (see Recipe.fit)
        stateful,
        config.epochs,
        # A fresh state each epoch and before validation, then the recipe's own callbacks.
        [training.ResetStates(), *training_callbacks(config, monitor)],
        config,
        x=stream_dataset(stateful, data.train_text, config),
        validation_data=validation,
        shuffle=False,  # the windows must arrive in order for the state to carry over
        verbose=training.progress_verbosity(),
    )
    model.set_weights(stateful.get_weights())  # the best epoch's, restored by early stopping
    # The optimizer's state too, so a saved model resumes training like a checkpointed one.
    model.optimizer.build(model.trainable_variables)
    for target, source in zip(model.optimizer.variables, stateful.optimizer.variables):
        target.assign(source)
    if out is not None:
        RECIPE.save_model(model, out)
    return model, history


def streamed_validation_bits(config, data, model):
    """Bits per character of `model` on the validation text read as `batch_size`
    streams, window after window, the state carried (char-rnn's way of scoring:
    every character has its stream's whole past as context, where each of the
    windows `fit` validates on starts from a zero state).  None when the text
    fills no window of every stream."""
    if len(data.validation_text) <= config.batch_size * config.window:
        return None
    stateful = build_model(config, data, stateful=True)
    stateful.set_weights(model.get_weights())
    scores = stateful.evaluate(
        stream_dataset(stateful, data.validation_text, config),
        callbacks=[training.ResetStates()],
        verbose=0,
        return_dict=True,
    )
    return scores["bits_per_char"]


def load(path, argument="--model"):
    """A saved character model (its vocabulary is inside it); a UsageError
    naming `argument` unless the file is a char_lm model."""
    return RECIPE.load_model(path, argument)


# --- the command line (sampling and serving: recipes/parts/char_lm_serving.py) ---
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sample"]:
        return sample_command(argv[1:])
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints, numeric_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.char_lm"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    training.add_common_arguments(parser, PRESETS)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", dest="text_path", help="train on this UTF-8 text file")
    source.add_argument("--tfds", dest="tfds_name", help="a TFDS text dataset prepared locally, e.g. tiny_shakespeare")
    source.add_argument(
        "--corpus",
        choices=sorted(text_data.CORPUS_BUILDERS),
        help="a corpus shipped with the package (default sonnets; tiny_shakespeare: 1.1M characters of the plays)",
    )
    parser.add_argument(
        "--tbptt", action="store_true", default=None, help="truncated BPTT: stateful training over consecutive windows"
    )
    args = parser.parse_args(argv)
    overrides = training.common_overrides(args)
    if args.text_path or args.tfds_name or args.corpus:
        overrides["settings"].setdefault("text", None)  # a file or dataset replaces the preset's literal text
    if args.clipvalue is not None:
        overrides["settings"].setdefault("clipnorm", None)  # --clipvalue replaces the default clipnorm
    with training.usage_errors(parser):  # a bad value or unknown --set key stops the command here (exit 2)
        config = RECIPE.config(
            args.preset,
            text_path=args.text_path,
            tfds_name=args.tfds_name,
            corpus=args.corpus,
            tbptt=args.tbptt,
            **overrides,
        )
    model, history = train(config, out=args.out)
    if "val_bits_per_char" in history.history:
        best = min(history.history["val_bits_per_char"])
        # nats: the unit char-rnn and nanoGPT quote (their loss, the mean cross-entropy)
        how = "streams, state carried" if config.tbptt else f"windows of {config.window} from a zero state"
        print(f"best validation: {best:.3f} bits per character ({best * math.log(2.0):.3f} nats; {how})")
        streamed = None if config.tbptt else streamed_validation_bits(config, load_data(config), model)
        if streamed is not None:
            print(
                f"the same model, the validation text read as {config.batch_size} streams with the state carried "
                f"(char-rnn's scoring): {streamed:.3f} bits per character ({streamed * math.log(2.0):.3f} nats)"
            )
    if config.text is not None:  # hello: the most likely character at every step (top_k=1)
        print(TextGenerator(model)(config.sample_prime, 4, top_k=1)[0])
    else:
        print(TextGenerator(model)(config.sample_prime, 400, temperature=0.8, seed=config.seed)[0])
    return 0


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.char_lm"))
