"""Image captioning: describe a picture in words, one word at a time.

One-to-many: a small CNN reads the image once; its features become the
recurrent decoder's initial state (the image is the RNN's starting point, as
in the lecture), and the decoder writes the caption word by word,

    image (64, 64, 3) -> brightness (max of R, G, B) + (row, column) channels
      -> 3 strided Conv2D -> shape map (8, 8, 64)      colour-blind: shapes, wherever they are
    image -> MaxPooling2D(8) -> colour map (8, 8, 3)   the colour in each cell
    [shape map, colour map] = feature map (8, 8, 67)
      feature map -> Flatten -> Dense -> initial state h_0 (and C_0 for an LSTM)
      <start> w_1 .. w_n -> Embedding -> LSTM | GRU | SimpleRNN from h_0 -> h_1 .. h_n+1
      h_t -> attention over the 64 map positions -> context_t         (--attention, on by default)
      [h_t, context_t] -> Dense(tanh) -> Dense(vocabulary) logits of w_t+1

trained with teacher forcing; to caption an image the trained cell is stepped
by hand, feeding each word back (greedy or beam search, `keras_rnn_lab.decoding`).

    python -m recipes.captioning                       # shapes world, LSTM with attention
    python -m recipes.captioning --no-attention        # the lecture's plain model: state only
    python -m recipes.captioning --no-colour-blind-cnn # RGB convolutions: watch the held-out pairs fail
    python -m recipes.captioning --cell gru --beam-width 5 --grid shapes.png
    python -m recipes.captioning --images photos/ --captions captions.txt   # or --tfds coco_captions
    python -m recipes.captioning --preset tiny         # seconds, for a smoke test

Data: a generated shapes world (`keras_rnn_lab.data.shapes_world`) whose
held-out colour-shape pairs test compositional generalisation, or your
pictures and captions, or a prepared TFDS set (`keras_rnn_lab.data.captions`).
A saved model holds its words: `export` serves it as it is.

What to expect (default preset, about 3 minutes on two CPU cores): new scenes
97.8% exact, scenes with held-out pairs 81.7%; with `--no-colour-blind-cnn`
13-19%.  The README has the measurements and where the model still breaks.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.data import captions, shapes_world
from keras_rnn_lab.data.captions import Vocabulary, teacher_forcing, tokenize
from keras_rnn_lab.training import (
    Recipe,
    TrainingConfig,
    add_common_arguments,
    check_number,
    check_positive_int,
    check_rate,
    check_split_fractions,
    common_overrides,
    config_from_preset,
    make_optimizer,
    positive_int,
    recurrent_layer,
    stop_early,
    summaries,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation
from recipes.parts.captioning_captioner import (  # noqa: F401  (SERVED_MAX_WORDS: exports read it here)
    SERVED_MAX_WORDS,
    Captioner,
    evaluate,
    numeric_endpoints,
    serving_endpoints,
)
from recipes.parts.captioning_layers import (
    CaptionVocabulary,
    CoordinateChannels,  # noqa: F401  (registered on import; tests/test_old_files.py finds it here)
    WordDropout,
    feature_map,
)
from recipes.parts.captioning_report import EpochTimer, format_report, write_grid

# Kept out of training entirely: one pair per shape and colour, so every colour
# and every shape is still seen, just never together.
HELD_OUT_PAIRS = (("red", "square"), ("green", "triangle"), ("blue", "circle"))
SPLITS = captions.SHAPES_WORLD_SPLITS  # held_out: shapes world only


@dataclasses.dataclass
class Config(TrainingConfig):
    """Everything one training run depends on; the shared training fields come from TrainingConfig."""

    units: int = 256
    embedding_dim: int = 64  # a vocabulary of ~20 words (shapes world) needs little room
    filters: tuple = (16, 32, 64)  # one stride-2 Conv2D each: 64x64 -> 8x8, cheap on 2 cores
    attention: bool = True  # decoder looks back at the 8x8 map each word; False: the state only
    colour_blind_cnn: bool = True  # convolutions see brightness only; colour joins from a pooled RGB map
    word_dropout: float = 0.0  # in training, this share of the words the decoder reads become <unk>
    # Shapes world (the default data).
    train_scenes: int = 20_000
    validation_scenes: int = 1_000  # for early stopping
    test_scenes: int = 1_000  # of seen colour-shape pairs: 0.1% resolution on exact match
    held_out_scenes: int = 1_000  # each with at least one held-out pair
    two_object_fraction: float = 0.75  # most scenes need a relation
    held_out_pairs: tuple = HELD_OUT_PAIRS
    # A user's data instead: pictures and a caption file, or a TFDS catalogue name.
    images_dir: str = None
    captions_file: str = None
    tfds_name: str = None
    tfds_data_dir: str = None  # where the TFDS dataset is prepared (default: tfds_local.default_data_dir())
    max_images: int = None  # use at most this many images of a user's data
    validation_fraction: float = 0.1  # of a user's images, split by image
    test_fraction: float = 0.1
    min_word_count: int = 1  # rarer training words become <unk> (user data)
    max_caption_words: int = 20  # longer captions are cut for training (user data)
    image_size: int = 64  # every image is resized to image_size x image_size
    # Training.
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    # Decoding and report.
    beam_width: int = 3
    length_penalty: float = 0.0
    grid_path: str = "captioning_grid.png"  # None: no PNG

    def __post_init__(self):
        super().__post_init__()
        counts = ("embedding_dim", "train_scenes", "validation_scenes", "test_scenes", "held_out_scenes")
        for name in counts + ("beam_width", "min_word_count", "max_caption_words"):
            check_positive_int(name, getattr(self, name))
        if self.max_images is not None:
            check_positive_int("max_images", self.max_images)
        if not (isinstance(self.filters, (tuple, list)) and self.filters):
            raise TypeError(
                f"Argument `filters` must be a non-empty tuple of positive ints; received {self.filters!r}."
            )
        self.filters = tuple(check_positive_int("filters", f) for f in self.filters)
        self.image_size = check_positive_int("image_size", self.image_size)
        if self.image_size % 2 ** len(self.filters):
            raise ValueError(
                f"Argument `image_size` must be divisible by 2 ** len(filters) = {2 ** len(self.filters)} (each "
                f"convolution halves the image); received {self.image_size}."
            )
        check_rate("word_dropout", self.word_dropout)
        check_number("length_penalty", self.length_penalty, "[0, inf)", lambda x: x >= 0)
        check_number("two_object_fraction", self.two_object_fraction, "[0, 1]", lambda x: 0 <= x <= 1)
        check_split_fractions(self.validation_fraction, self.test_fraction)
        shapes_world.check_pairs("held_out_pairs", self.held_out_pairs)
        self.held_out_pairs = tuple(tuple(pair) for pair in self.held_out_pairs)
        captions.check_sources(self.images_dir, self.captions_file, self.tfds_name)
        if self.source == "shapes" and self.image_size < 50:
            raise ValueError(
                f"Argument `image_size` must be at least 50 for the shapes world; received {self.image_size}."
            )

    @property
    def source(self):
        """Where the data come from: "shapes", "files" or "tfds"."""
        if self.images_dir is not None:
            return "files"
        return "tfds" if self.tfds_name is not None else "shapes"


PRESETS = {
    # Tests: 1,500 one-object scenes; 98% of new ones captioned right after ~15 s.
    "tiny": dict(
        units=64,
        embedding_dim=16,
        filters=(8, 16, 32),
        train_scenes=1_500,
        validation_scenes=100,
        test_scenes=100,
        held_out_scenes=100,
        two_object_fraction=0.0,
        epochs=12,
        batch_size=32,
        learning_rate=5e-3,
        beam_width=2,
        grid_path=None,
    ),
    "default": {},
}


# --- data ------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """The splits of one data source, with the vocabulary the model is trained on."""

    splits: dict  # split name -> CaptionSet (held_out only for the shapes world)
    vocabulary: Vocabulary
    max_words: int  # caption words the decoder is trained on and may write
    source: str


def load_data(config):
    """The splits and their vocabulary, from the source `config` names."""
    if config.source == "shapes":
        sizes = (config.train_scenes, config.validation_scenes, config.test_scenes, config.held_out_scenes)
        splits = captions.shapes_world_splits(
            sizes, config.seed, config.two_object_fraction, config.held_out_pairs, config.image_size
        )
        return Data(splits, Vocabulary.shapes(), shapes_world.MAX_CAPTION_WORDS, "shapes")
    if config.source == "files":
        images, references, names = captions.load_image_folder(
            config.images_dir, config.captions_file, config.image_size, config.max_images
        )
    else:
        images, references, names = captions.load_tfds_captions(
            config.tfds_name, config.tfds_data_dir, config.image_size, config.max_images
        )
    splits = captions.split_by_image(
        images, references, names, config.seed, config.validation_fraction, config.test_fraction
    )
    texts = [text for refs in splits["train"].references for text in refs]
    vocabulary = Vocabulary.from_captions(texts, config.min_word_count)
    longest = max(len(tokenize(text)) for text in texts)
    return Data(splits, vocabulary, min(config.max_caption_words, max(longest, 1)), config.source)


# --- the model ---------------------------------------------------------------------------
def build_model(config, data=None):
    """{"image" (batch, size, size, 3) uint8, "words" (batch, time) int32} -> logits (batch, time, vocabulary),
    compiled.  The vocabulary is `data.vocabulary` (None: the shapes world's), saved with the model.
    """
    vocabulary = Vocabulary.shapes() if data is None else data.vocabulary
    vocabulary_size = len(vocabulary)
    image = keras.Input((config.image_size, config.image_size, 3), dtype="uint8", name="image")
    words = keras.Input((None,), dtype="int32", name="words")

    pixels = keras.layers.Rescaling(1 / 255, name="rescale")(image)  # (batch, size, size, 3) in [0, 1]
    # (batch, side, side, channels): shapes from the convolutions, colour beside them (colour_blind_cnn).
    x, channels = feature_map(pixels, config.filters, config.colour_blind_cnn)
    # A map, not a global pool: where each object is must survive for the relations.
    flat = keras.layers.Flatten(name="flatten")(x)  # (batch, positions * filters)
    initial_state = [keras.layers.Dense(config.units, activation="tanh", name="initial_h")(flat)]
    if config.cell == "lstm":
        initial_state.append(keras.layers.Dense(config.units, name="initial_c")(flat))

    read = (
        WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(words) if config.word_dropout else words
    )
    embedded = keras.layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")(read)  # (b, t, dim)
    decoder = recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        return_sequences=True,
        name="decoder",
        **layer_regularisation(config),
    )
    hidden = decoder(embedded, initial_state=initial_state)  # (batch, time, units)
    if config.attention:
        side = config.image_size // 2 ** len(config.filters)
        features = keras.layers.Reshape((side * side, channels), name="features")(x)  # (batch, positions, filters)
        keys = keras.layers.Dense(config.units, use_bias=False, name="attention_keys")(features)  # (b, pos, units)
        context = keras.layers.Attention(name="attention")([hidden, features, keys])  # (batch, time, filters)
        hidden = keras.layers.Concatenate(name="with_context")([hidden, context])
        hidden = keras.layers.Dense(config.units, activation="tanh", name="attention_output")(hidden)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(hidden)  # (batch, time, vocabulary)
    logits = CaptionVocabulary(vocabulary.words, name="vocabulary")(logits)  # unchanged; the words, for a saved model
    model = keras.Model({"image": image, "words": words}, logits, name=f"captioning_{config.cell}")
    model.compile(
        optimizer=make_optimizer(config),  # Adam at config.learning_rate, clipped by config.clipnorm / clipvalue
        # Mean over the real words (weight 1), so padding changes neither the loss nor its gradient.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=["accuracy"],  # per word, padding excluded by the sample weights
    )
    return model


# --- training ------------------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` with teacher forcing on the training captions, padding weighted 0."""
    inputs, targets, weights = teacher_forcing(data.splits["train"], data.vocabulary, data.max_words)
    return {
        "x": inputs,
        "y": targets,
        "sample_weight": weights,
        "batch_size": config.batch_size,
        "validation_data": teacher_forcing(data.splits["validation"], data.vocabulary, data.max_words),
    }


def stop_on_validation_loss(config):
    """Early stopping on val_loss, the learning rate cut after one flat epoch."""
    return stop_early("val_loss", config.patience, reduce_lr_patience=1)


def count_caption_words(data):
    """The scored words (and ends) of the training captions, padding excluded."""
    _, _, weights = teacher_forcing(data.splits["train"], data.vocabulary, data.max_words)
    return int(weights.sum())


RECIPE = Recipe.of(
    __name__,
    count_examples=count_caption_words,
    example_unit="training caption words",
    callbacks=stop_on_validation_loss,
)


@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    data: Data
    predictions: dict  # split -> {"greedy" | "beam": list of caption strings}
    scores: dict  # split -> {"greedy" | "beam": {"exact", "bleu"}}
    seconds: dict  # "data", "fit", "evaluation", "total"; "epoch": mean seconds per training epoch
    grid_path: str = None


def train(config, data=None, verbose=0):
    """Fit with teacher forcing (early stopping on validation loss), then caption the test splits."""
    start = time.perf_counter()
    data = load_data(config) if data is None else data
    loaded = time.perf_counter()
    timer = EpochTimer()
    data, model, history = RECIPE.train_new_model(config, data, callbacks=[timer], verbose=verbose)
    fitted = time.perf_counter()
    captioner = Captioner(model)
    predictions, scores = {}, {}
    for split in ("test", "held_out"):
        if split not in data.splits:
            continue
        predictions[split], scores[split] = {}, {}
        for method, width in (("greedy", 1), ("beam", config.beam_width)):
            predictions[split][method], scores[split][method] = evaluate(
                captioner, data.splits[split], data, width, config.length_penalty
            )
    grid_path = None
    if config.grid_path is not None:
        grid_path = write_grid(config.grid_path, data, predictions)
        summaries.log_png(model, history.epoch[-1] if history.epoch else 0, "captions", grid_path)  # in a run dir
    end = time.perf_counter()
    seconds = dict(data=loaded - start, fit=fitted - loaded, evaluation=end - fitted, total=end - start)
    seconds["epoch"] = float(np.mean(timer.seconds))
    return TrainResult(config, model, history.history, data, predictions, scores, seconds, grid_path)


# --- the command ----------------------------------------------------------------------
def main(argv=None):
    """Train once, print the scores and write the grid; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints, numeric_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.captioning"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, help="attend to the map (default: on)")
    parser.add_argument(
        "--colour-blind-cnn",
        dest="colour_blind_cnn",
        action=argparse.BooleanOptionalAction,
        help="shapes from brightness, colour from a pooled RGB map (default: on)",
    )
    parser.add_argument(
        "--word-dropout", dest="word_dropout", type=float, help="share of read words replaced by <unk> in training"
    )
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, help="beams for beam search")
    parser.add_argument("--train-scenes", dest="train_scenes", type=positive_int, help="shapes-world training scenes")
    parser.add_argument("--images", dest="images_dir", help="a folder of your own images (with --captions)")
    parser.add_argument("--captions", dest="captions_file", help="name<TAB>caption lines, or an image,caption CSV")
    parser.add_argument("--tfds", dest="tfds_name", help="a prepared TFDS captioning set, e.g. coco_captions")
    parser.add_argument("--tfds-data-dir", dest="tfds_data_dir", help="where that TFDS set is prepared")
    parser.add_argument("--max-images", dest="max_images", type=positive_int, help="use at most N of your images")
    parser.add_argument("--grid", dest="grid_path", help="PNG of captioned test images (default: captioning_grid.png)")
    args = parser.parse_args(argv)
    flags = (
        "attention colour_blind_cnn word_dropout beam_width train_scenes images_dir captions_file tfds_name "
        "tfds_data_dir max_images grid_path"
    ).split()
    with usage_errors(parser):  # bad values and bad files stop the command before any training
        config = config_from_preset(
            Config, PRESETS, args.preset, **common_overrides(args), **{f: getattr(args, f) for f in flags}
        )
        start = time.perf_counter()
        data = load_data(config)
    loading = time.perf_counter() - start
    result = train(config, data, verbose=training.progress_verbosity())
    result.seconds["data"] += loading
    result.seconds["total"] += loading
    print(format_report(result))
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.captioning"))
