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

trained with teacher forcing (the decoder reads the true previous word) and
cross-entropy on the words (padding carries no weight).  To caption a new
image the trained cell is stepped by hand, with the same weights, feeding each
chosen word back: greedy decoding or beam search (`keras_rnn_lab.decoding`).

    python -m recipes.captioning                       # shapes world, LSTM with attention
    python -m recipes.captioning --no-attention        # the lecture's plain model: state only
    python -m recipes.captioning --no-colour-blind-cnn # RGB convolutions: watch the held-out pairs fail
    python -m recipes.captioning --cell gru --beam-width 5 --grid shapes.png
    python -m recipes.captioning --images photos/ --captions captions.txt
    python -m recipes.captioning --tfds coco_captions --tfds-data-dir ~/tensorflow_datasets
    python -m recipes.captioning --preset tiny         # seconds, for a smoke test

Data.  By default a generated shapes world (`keras_rnn_lab.data.shapes_world`):
one or two objects (circle, square, triangle; six colours; small or large),
two objects in one of four relations, "a small red circle left of a large
blue square".  Its rule for which object is named first makes every picture
have exactly one right caption, so exact match means something.  The colour
-shape pairs red square, green triangle and blue circle never appear in
training; a second test set holds at least one of them in every scene, to
measure whether colour and shape were learnt apart (compositional
generalisation).  `--images DIR --captions FILE` reads your own pictures
(any format TensorFlow decodes; FILE has `name<TAB>caption` lines, or is a
CSV with an `image,caption` header as in Flickr8k's captions.txt; several
captions per image are several references), and `--tfds coco_captions` a
prepared TFDS catalogue dataset; both are split by image into train,
validation and test.

Reports: exact match (the caption equals a reference word for word) and
corpus BLEU-4, with greedy decoding and with beam search, on held-out scenes,
and a PNG grid of test images with the predicted captions, failures included.

What to expect (default preset: 20,000 training scenes, an LSTM of 256 units
with attention, the colour-blind CNN, 10 epochs; on two CPU cores shared with
other jobs, load 3-7).  Seed 0: 164 s for the whole command, data and
captions included (15.7 s an epoch on average, 13-23 s):

                                                   exact  BLEU-4
    new scenes, seen pairs, greedy                 97.8%   0.991
    new scenes, seen pairs, beam (width 3)         97.8%   0.991
    scenes with held-out pairs, greedy             81.7%   0.933
    scenes with held-out pairs, beam (width 3)     81.4%   0.932

    held-out pairs (beam): named right / seen, and what was said instead
      red square        349 / 356   'red circle' 5, 'red triangle' 1, 'purple square' 1
      green triangle    287 / 369   'green square' 52, 'green circle' 26, 'blue triangle' 2
      blue circle       314 / 384   'blue square' 63, 'blue triangle' 3, 'purple circle' 2

Seed 1 (184 s): seen pairs 98.9% exact, BLEU-4 0.996; held-out pairs 79.2%,
0.927 (greedy), with green triangle the hard one this time (188 of 355 right,
"green square" 126 times) and red square right 356 of 362 times.

For reference, a straightforward model (three Conv2D/MaxPooling blocks of
32-64-128 filters at full resolution on RGB, Dense initial states, Keras's
LSTM(256)) reached 66.8% exact on seen pairs and 14% on held-out pairs after
5 epochs in about 9.5 minutes here.  What this model does differently:

  * a cheap CNN: three stride-2 convolutions of 16, 32 and 64 filters do about
    a tenth of the reference's multiply-adds, so 10 epochs fit where it managed 5;
  * where things are survives: two coordinate channels (CoordConv) let the
    convolutions see position, and the 8x8 map is flattened into the initial
    state (and attended to), never pooled away, so relations can be read;
  * the naming rule follows the word order (see `keras_rnn_lab.data.shapes_world`),
    so a decoder writing left to right settles the first object word by word;
  * shape and colour come apart in the encoder: the convolutions see only
    brightness, so "square" is learnt once for every colour, and the colour
    of each cell joins beside them.  This is what the held-out pairs need.

Measured with seed 0, each against the default above:

                                            seen pairs        held-out pairs
                                            exact  BLEU-4     exact  BLEU-4
    default (colour-blind CNN, attention)   97.8%  0.991      81.7%  0.933
    --no-colour-blind-cnn (RGB CNN)         97.9%  0.991      19.4%  0.694
      the same, seed 1                      97.8%  0.990      13.3%  0.706
      the same, --no-attention              97.5%  0.988       0.0%  0.639
      the same, --word-dropout 0.3          98.0%  0.991       6.9%  0.678

(greedy decoding; beam search, width 3, changes these by at most 0.3 points:
the decoder is already sure.)  So the seen target needs neither attention nor
the colour-blind CNN: the cheap, position-keeping CNN reaches it alone.  The
held-out pairs are where designs differ.  With RGB convolutions the colour
is nearly always right and the shape becomes one seen with that colour in
training: red square -> "red circle" 216 of 356 times (seed 0), 345 of 362
(seed 1), 348 of 356 without attention, the lecture's failure.  It is tempting
to blame the decoder, which has only ever read "red" followed by circle or
triangle; but replacing 30% of the words it reads by <unk> (`--word-dropout`,
to lean on the picture more) made it worse, and the colour-blind CNN, which
changes nothing in the decoder, fixed most of it: the convolutions on RGB had,
in effect, learnt a square separately for each colour they saw it in.

The recurrent layer is not where the time goes: with Keras's LSTM in its place
(`--builtin`) an epoch took about as long (median 1.04 times ours over four
interleaved epochs of 2,048 scenes, RGB CNN); eleven steps per caption cost
little next to the CNN and the attention.

Where it still breaks, like the lecture's slides:

  * seen pairs (seed 0): 15 of the 22 errors name both objects right and in
    the right order but give the wrong relation ("a small white circle below
    a small white square" for one above it), 4 name them in the wrong order,
    3 get a colour wrong.  With RGB convolutions it was 17 of 21 relations,
    8 of them between two objects of the same size and colour, where telling
    which is where means binding each shape to its place;
  * held-out pairs: now and then a held-out pair still becomes a shape seen
    with its colour, which pair varies with the seed (see the "said instead"
    lines: green triangle -> "green square" 52 times with seed 0, 126 with seed 1).
"""

import argparse
import collections
import csv
import dataclasses
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402  (decoding runs in TensorFlow loops; image files via tf.io)

from keras_rnn_lab.data import shapes_world  # noqa: E402
from keras_rnn_lab.decoding import beam_search, greedy_decode  # noqa: E402
from keras_rnn_lab.diagnostics.bleu import corpus_bleu  # noqa: E402
from keras_rnn_lab.serving import export  # noqa: E402
from keras_rnn_lab.training import (  # noqa: E402
    RECURRENT_LAYERS,
    add_common_arguments,
    check_clip,
    check_positive_int,
    check_rate,
    common_overrides,
    config_from_preset,
    make_optimizer,
    positive_int,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import Regularisation, check_penalties, layer_regularisation  # noqa: E402

PAD, START, END, UNK = 0, 1, 2, 3  # token ids; padding must be 0 (decoding pads with 0)
SPECIAL_TOKENS = ("<pad>", "<start>", "<end>", "<unk>")
# Kept out of training entirely: one pair per shape and colour, so every colour
# and every shape is still seen, just never together.
HELD_OUT_PAIRS = (("red", "square"), ("green", "triangle"), ("blue", "circle"))
EVALUATION_BATCH_SIZE = 500  # decoding keeps no activations: big batches are cheap
SPLITS = ("train", "validation", "test", "held_out")  # held_out: shapes world only


@dataclasses.dataclass
class Config(Regularisation):
    """Everything one training run depends on."""

    cell: str = "lstm"
    builtin: bool = False  # True: keras.layers' layer of the same name, for comparisons
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
    tfds_data_dir: str = None  # where the TFDS dataset is prepared (default: TFDS's own)
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
    clipnorm: float = None  # gradient clipping (keras.optimizers.Adam's), off by default
    clipvalue: float = None
    patience: int = 3  # epochs without a better val_loss before stopping (best weights kept)
    # Decoding and report.
    beam_width: int = 3
    length_penalty: float = 0.0
    grid_path: str = "captioning_grid.png"  # None: no PNG
    seed: int = 0

    def __post_init__(self):
        if self.cell not in RECURRENT_LAYERS:
            raise ValueError(f"Argument `cell` must be one of {sorted(RECURRENT_LAYERS)}; received {self.cell!r}.")
        counts = ("units", "embedding_dim", "train_scenes", "validation_scenes", "test_scenes", "held_out_scenes")
        for name in counts + ("epochs", "batch_size", "patience", "beam_width", "min_word_count", "max_caption_words"):
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
        for name in ("word_dropout", "dropout", "recurrent_dropout"):
            check_rate(name, getattr(self, name))
        check_penalties(self)
        for name in ("learning_rate", "length_penalty", "two_object_fraction"):
            _check_number(name, getattr(self, name))
        if self.two_object_fraction > 1:
            raise ValueError(
                f"Argument `two_object_fraction` must be in [0, 1]; received {self.two_object_fraction!r}."
            )
        self.clipnorm, self.clipvalue = check_clip("clipnorm", self.clipnorm), check_clip("clipvalue", self.clipvalue)
        for name in ("validation_fraction", "test_fraction"):
            value = _check_number(name, getattr(self, name))
            if not 0 < value < 1:
                raise ValueError(f"Argument `{name}` must be in (0, 1); received {value!r}.")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                "Arguments `validation_fraction` + `test_fraction` must leave images for training (sum < 1); "
                f"received {self.validation_fraction} + {self.test_fraction}."
            )
        shapes_world.check_pairs("held_out_pairs", self.held_out_pairs)
        self.held_out_pairs = tuple(tuple(pair) for pair in self.held_out_pairs)
        if (self.images_dir is None) != (self.captions_file is None):
            raise ValueError(
                "Arguments `images_dir` and `captions_file` go together; received "
                f"images_dir={self.images_dir!r}, captions_file={self.captions_file!r}."
            )
        if self.images_dir is not None and self.tfds_name is not None:
            raise ValueError(
                "Pass either `images_dir`/`captions_file` or `tfds_name`, not both; received "
                f"tfds_name={self.tfds_name!r}."
            )
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


def _check_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Argument `{name}` must be a number; received {value!r} of type {type(value).__name__}.")
    if value < 0 or (name == "learning_rate" and value == 0):
        raise ValueError(
            f"Argument `{name}` must be {'> 0' if name == 'learning_rate' else '>= 0'}; received {value!r}."
        )
    return value


# --- words -----------------------------------------------------------------------------
def tokenize(text):
    """Lower-case words and numbers of `text`; punctuation dropped ("A dog." -> ["a", "dog"])."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Words <-> token ids; ids 0-3 are <pad>, <start>, <end>, <unk>."""

    words: tuple

    @classmethod
    def from_captions(cls, captions, min_count=1):
        """Every word of `captions` seen at least `min_count` times, most frequent first."""
        counts = {}
        for text in captions:
            for word in tokenize(text):
                counts[word] = counts.get(word, 0) + 1
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(SPECIAL_TOKENS + tuple(kept))

    @classmethod
    def shapes(cls):
        return cls(SPECIAL_TOKENS + shapes_world.WORDS)

    def __len__(self):
        return len(self.words)

    def encode(self, captions, max_words):
        """(n, max_words + 2) int32: <start>, the first `max_words` words, <end>, padding."""
        index = {word: i for i, word in enumerate(self.words)}
        tokens = np.full((len(captions), max_words + 2), PAD, dtype="int32")
        for row, text in enumerate(captions):
            ids = [index.get(word, UNK) for word in tokenize(text)][:max_words]
            tokens[row, : len(ids) + 2] = [START, *ids, END]
        return tokens

    def decode(self, tokens):
        """Token ids -> the caption text, up to (without) the first <end>."""
        words = []
        for token in np.asarray(tokens).tolist():
            if token in (END, PAD):
                break
            words.append(self.words[token])
        return " ".join(words)


# --- data ------------------------------------------------------------------------------
@dataclasses.dataclass
class CaptionSet:
    """Images with their reference captions."""

    images: np.ndarray  # (n, size, size, 3) uint8
    references: list  # n lists of caption strings (one or more per image)
    scenes: shapes_world.Scenes = None  # the shapes world's objects, when generated
    names: list = None  # file names or ids of a user's images

    def __len__(self):
        return len(self.references)


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
        return _shapes_data(config)
    if config.source == "files":
        images, references, names = load_image_folder(
            config.images_dir, config.captions_file, config.image_size, config.max_images
        )
    else:
        images, references, names = load_tfds_captions(
            config.tfds_name, config.tfds_data_dir, config.image_size, config.max_images
        )
    splits = split_by_image(images, references, names, config.seed, config.validation_fraction, config.test_fraction)
    vocabulary = Vocabulary.from_captions(
        [text for refs in splits["train"].references for text in refs], config.min_word_count
    )
    longest = max(len(tokenize(text)) for refs in splits["train"].references for text in refs)
    return Data(splits, vocabulary, min(config.max_caption_words, max(longest, 1)), config.source)


def _shapes_data(config):
    """Train, validation and test scenes without the held-out pairs; held_out scenes with them.

    Each split comes from its own child of one seed sequence, so changing one
    split's size leaves the others as they were.
    """
    streams = np.random.SeedSequence(config.seed).spawn(len(SPLITS))
    sizes = dict(
        train=config.train_scenes,
        validation=config.validation_scenes,
        test=config.test_scenes,
        held_out=config.held_out_scenes,
    )
    splits = {}
    for (name, count), stream in zip(sizes.items(), streams):
        held_out = name == "held_out"
        scenes = shapes_world.generate_scenes(
            count,
            seed=np.random.default_rng(stream),
            two_object_fraction=config.two_object_fraction,
            exclude_pairs=None if held_out else config.held_out_pairs,
            include_pairs=config.held_out_pairs if held_out else None,
            image_size=config.image_size,
        )
        splits[name] = CaptionSet(scenes.images, [[text] for text in scenes.captions], scenes)
    return Data(splits, Vocabulary.shapes(), shapes_world.MAX_CAPTION_WORDS, "shapes")


def read_caption_file(path):
    """{image name: [captions]} from `path`, in file order.

    Lines are `name<TAB>caption` (a `#N` suffix on the name, as in Flickr8k's
    token file, is dropped), or the file is a CSV whose header is `image,caption`.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ValueError(f"Argument `captions_file`: no file {str(path)!r}.") from None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise ValueError(f"Argument `captions_file`: {str(path)!r} is not a UTF-8 text file ({error}).") from None
    lines = text.splitlines()
    captions = {}
    if lines and lines[0].strip().lower().replace(" ", "") == "image,caption":
        rows = ((number, row) for number, row in enumerate(csv.reader(lines[1:]), start=2))
    else:
        rows = ((number, line.split("\t", 1)) for number, line in enumerate(lines, start=1))
    for number, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(
                f"Argument `captions_file`: line {number} of {str(path)!r} must be `image<TAB>caption` (or "
                "`image,caption` "
                f"under an `image,caption` header) with both parts non-empty; received {','.join(row)[:80]!r}."
            )
        name = re.sub(r"#\d+$", "", row[0].strip())
        caption = row[1] if len(row) == 2 else ",".join(row[1:])  # an unquoted comma in a CSV caption
        if not tokenize(caption):
            raise ValueError(
                f"Argument `captions_file`: line {number} of {str(path)!r} has a caption without words: {caption!r}."
            )
        captions.setdefault(name, []).append(caption.strip())
    if not captions:
        raise ValueError(f"Argument `captions_file`: {str(path)!r} holds no captions.")
    return captions


def load_image_folder(images_dir, captions_file, image_size=64, max_images=None):
    """(images (n, size, size, 3) uint8, references, names) for the images `captions_file` names."""
    if not os.path.isdir(images_dir):
        raise ValueError(f"Argument `images_dir`: no directory {str(images_dir)!r}.")
    captions = read_caption_file(captions_file)
    names = list(captions)[:max_images]
    missing = [name for name in names if not os.path.isfile(os.path.join(images_dir, name))]
    if missing:
        raise ValueError(
            f"Argument `captions_file` names {len(missing)} image(s) not found in {str(images_dir)!r}: {missing[:5]}."
        )
    images = np.stack([_read_image(os.path.join(images_dir, name), image_size) for name in names])
    return images, [captions[name] for name in names], names


def _read_image(path, image_size):
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise ValueError(
            f"Image {path!r} could not be decoded as PNG, JPEG, GIF or BMP ({error.message[:100]})."
        ) from None
    return _resized(image, image_size)


def _resized(image, image_size):
    """(h, w, 3) uint8 -> (image_size, image_size, 3) uint8, aspect ratio not kept."""
    resized = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()


def load_tfds_captions(name, data_dir=None, image_size=64, max_images=None):
    """(images, references, names) of a prepared TFDS captioning set (coco_captions: "image", "captions/text")."""
    import tensorflow_datasets as tfds  # only for this source

    split = "train" if max_images is None else f"train[:{max_images}]"
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises several types for "not prepared here"
        raise ValueError(
            f"Argument `tfds_name`: could not load {name!r} from {data_dir!r} without downloading "
            f"({type(error).__name__}: {str(error)[:200]}). Prepare it there first, or pass --images and --captions."
        ) from None
    images, references, names = [], [], []
    for example in tfds.as_numpy(dataset):
        if "image" not in example or "captions" not in example or "text" not in example["captions"]:
            raise ValueError(
                f"Argument `tfds_name`: {name!r} examples must have 'image' and 'captions' with 'text' (like "
                "coco_captions); "
                f"received keys {sorted(example)}."
            )
        texts = [t.decode("utf-8") for t in example["captions"]["text"] if tokenize(t.decode("utf-8"))]
        if not texts:
            continue  # an image without a usable caption teaches nothing
        images.append(_resized(example["image"], image_size))
        references.append(texts)
        name = example.get("image/filename", str(len(names)))
        names.append(name.decode("utf-8") if isinstance(name, bytes) else str(name))
    if not images:
        raise ValueError(f"Argument `tfds_name`: {name!r} split {split!r} holds no image with a caption.")
    return np.stack(images), references, names


def split_by_image(images, references, names, seed, validation_fraction, test_fraction):
    """{"train", "validation", "test"} -> CaptionSet, each image in one split only."""
    count = len(references)
    if count < 3:
        raise ValueError(f"Argument `images`: need at least 3 captioned images (one per split); received {count}.")
    order = np.random.default_rng(seed).permutation(count)
    n_validation = max(1, round(validation_fraction * count))
    n_test = max(1, round(test_fraction * count))
    parts = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_validation],
        "train": order[n_test + n_validation :],
    }
    if len(parts["train"]) == 0:
        raise ValueError(f"Argument `images`: {count} images leave none for training after validation and test.")
    return {
        split: CaptionSet(images[rows], [references[i] for i in rows], names=[names[i] for i in rows])
        for split, rows in parts.items()
    }


def teacher_forcing(caption_set, vocabulary, max_words):
    """(inputs {"image", "words"}, targets, sample weights) for `model.fit`.

    The decoder reads <start> w_1 .. w_n and must write w_1 .. w_n <end>;
    padding after <end> has weight 0.  An image with several references gives
    one example per reference.
    """
    rows = [i for i, refs in enumerate(caption_set.references) for _ in refs]
    texts = [text for refs in caption_set.references for text in refs]
    tokens = vocabulary.encode(texts, max_words)  # (examples, max_words + 2)
    targets = tokens[:, 1:]
    weights = (targets != PAD).astype("float32")
    return {"image": caption_set.images[rows], "words": tokens[:, :-1]}, targets, weights


# --- the model ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="recipes.captioning")
class CoordinateChannels(keras.layers.Layer):
    """Appends two channels, the row and the column of every pixel in [-1, 1]
    (Liu et al., 2018, "CoordConv"): where something is becomes something the
    convolutions can see, which the relations need."""

    def call(self, images):  # (batch, height, width, channels)
        shape = keras.ops.shape(images)
        rows = keras.ops.linspace(-1.0, 1.0, shape[1])
        columns = keras.ops.linspace(-1.0, 1.0, shape[2])
        grid = keras.ops.stack(keras.ops.meshgrid(rows, columns, indexing="ij"), axis=-1)  # (height, width, 2)
        grid = keras.ops.broadcast_to(keras.ops.cast(grid, images.dtype)[None], (shape[0], shape[1], shape[2], 2))
        return keras.ops.concatenate([images, grid], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 2)


@keras.saving.register_keras_serializable(package="recipes.captioning")
class Brightness(keras.layers.Layer):
    """(batch, height, width, channels) -> (batch, height, width, 1): each pixel's
    largest channel, the same for a red, a blue or a white object of equal
    brightness.  A colour-blind view for the shape-finding convolutions."""

    def call(self, images):
        return keras.ops.max(images, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="recipes.captioning")
class WordDropout(keras.layers.Layer):
    """In training, replaces each word the decoder reads by <unk> with probability
    `rate` (<start> and padding are kept), so the next word has to come from the
    picture more and from the previous word less (Bowman et al., 2016)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, words, training=False):  # (batch, time) int32
        if not training or self.rate == 0:
            return words
        dropped = keras.random.uniform(keras.ops.shape(words), seed=self.seed_generator) < self.rate
        dropped = dropped & (words != START) & (words != PAD)
        return keras.ops.where(dropped, keras.ops.cast(UNK, words.dtype), words)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# Files saved before these layers were registered under "recipes.captioning"
# (like every other recipe's) name them "keras_rnn_lab>NAME": keep those loading.
for _layer_class in (CoordinateChannels, Brightness, WordDropout):
    keras.saving.get_custom_objects()[f"keras_rnn_lab>{_layer_class.__name__}"] = _layer_class


def build_model(config, vocabulary_size=None):
    """{"image" (batch, size, size, 3) uint8, "words" (batch, time) int32} -> logits (batch, time, vocabulary),
    compiled.

    vocabulary_size: None for the shapes world's (fixed) vocabulary.
    """
    if vocabulary_size is None:
        vocabulary_size = len(Vocabulary.shapes())
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    image = keras.Input((config.image_size, config.image_size, 3), dtype="uint8", name="image")
    words = keras.Input((None,), dtype="int32", name="words")

    pixels = keras.layers.Rescaling(1 / 255, name="rescale")(image)  # (batch, size, size, 3) in [0, 1]
    # The convolutions find shapes; with colour_blind_cnn they see only each pixel's
    # brightest channel, so "square" is learnt once for every colour, and the colour
    # comes beside them from a max-pooled RGB map (see the docstring for what it buys).
    x = Brightness(name="brightness")(pixels) if config.colour_blind_cnn else pixels  # (batch, size, size, 1 or 3)
    x = CoordinateChannels(name="coordinates")(x)  # (batch, size, size, 3 or 5)
    for i, filters in enumerate(config.filters):
        # Strided convolutions, no pooling: each halves the map at a quarter of the cost of a same-size conv + pool.
        x = keras.layers.Conv2D(
            filters, 5 if i == 0 else 3, strides=2, padding="same", activation="relu", name=f"conv{i + 1}"
        )(x)
    channels = config.filters[-1]
    if config.colour_blind_cnn:
        colour = keras.layers.MaxPooling2D(2 ** len(config.filters), name="colour")(pixels)  # (batch, side, side, 3)
        x = keras.layers.Concatenate(name="shape_and_colour")([x, colour])
        channels += 3
    # A map, not a global pool: where each object is must survive for the relations.
    flat = keras.layers.Flatten(name="flatten")(x)  # (batch, positions * filters)
    initial_state = [keras.layers.Dense(config.units, activation="tanh", name="initial_h")(flat)]
    if config.cell == "lstm":
        initial_state.append(keras.layers.Dense(config.units, name="initial_c")(flat))

    read = (
        WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(words) if config.word_dropout else words
    )
    embedded = keras.layers.Embedding(vocabulary_size, config.embedding_dim, name="embedding")(
        read
    )  # (batch, time, dim)
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
        keys = keras.layers.Dense(config.units, use_bias=False, name="attention_keys")(
            features
        )  # (batch, positions, units)
        context = keras.layers.Attention(name="attention")([hidden, features, keys])  # (batch, time, filters)
        hidden = keras.layers.Concatenate(name="with_context")([hidden, context])
        hidden = keras.layers.Dense(config.units, activation="tanh", name="attention_output")(hidden)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(hidden)  # (batch, time, vocabulary)
    model = keras.Model({"image": image, "words": words}, logits, name=f"captioning_{config.cell}")
    model.compile(
        optimizer=make_optimizer(config),  # Adam at config.learning_rate, clipped by config.clipnorm / clipvalue
        # Mean over the real words (weight 1), so padding changes neither the loss nor its gradient.
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=["accuracy"],  # per word, padding excluded by the sample weights
    )
    return model


class Captioner:
    """Writes captions with a trained captioning model, stepping its decoder cell by hand.

        captioner = Captioner(model)
        tokens, lengths = captioner(images, max_length=11)                 # greedy
        tokens, lengths = captioner(images, max_length=11, beam_width=3)   # beam search

    The encoder runs once per image; each step embeds the previous word, runs the
    decoder layer's own cell (same weights as in training) and, with attention,
    the same attention and output layers.
    """

    def __init__(self, model):
        self.model = model
        layer_names = {layer.name for layer in model.layers}
        needed = {"image", "embedding", "decoder", "logits", "initial_h"}
        if not needed <= layer_names:
            raise ValueError(
                f"Argument `model` must be a model from `build_model`; it lacks layers {sorted(needed - layer_names)}."
            )
        self.attention = "attention" in layer_names
        self.embedding = model.get_layer("embedding")
        self.cell = model.get_layer("decoder").cell
        self.logits = model.get_layer("logits")
        outputs = [model.get_layer("initial_h").output]
        if "initial_c" in layer_names:
            outputs.append(model.get_layer("initial_c").output)
        if self.attention:
            self.attend = model.get_layer("attention")
            self.attention_output = model.get_layer("attention_output")
            outputs += [model.get_layer("features").output, model.get_layer("attention_keys").output]
        self.encoder = keras.Model(model.get_layer("image").output, outputs, name="encoder")

    def encode(self, images):
        """(states, constants) of the decoder's first step for `images`."""
        outputs = self.encoder(images, training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]  # one output comes bare
        if not self.attention:
            return outputs, None
        return outputs[:-2], tuple(outputs[-2:])  # constants: features (values) and keys

    def step(self, tokens, states, constants):
        """One decoder step: tokens (batch,) int32 -> (log_probs (batch, vocabulary), new states)."""
        x = self.embedding(tokens)  # (batch, dim)
        hidden, states = self.cell(x, states, training=False)  # (batch, units)
        if self.attention:
            features, keys = constants
            context = self.attend([hidden[:, None], features, keys])[:, 0]  # (batch, filters)
            hidden = self.attention_output(keras.ops.concatenate([hidden, context], axis=-1))
        return keras.ops.log_softmax(self.logits(hidden)), list(states)

    def __call__(self, images, max_length, beam_width=1, length_penalty=0.0, batch_size=EVALUATION_BATCH_SIZE):
        """(tokens (n, max_length) int32, lengths (n,) int32); beam_width 1 is greedy decoding."""
        beam_width = check_positive_int("beam_width", beam_width)
        tokens, lengths = [], []
        for begin in range(0, len(images), batch_size):
            states, constants = self.encode(images[begin : begin + batch_size])
            if beam_width == 1:
                out, length = greedy_decode(self.step, states, START, END, max_length, constants=constants)
            else:
                out, length, _ = beam_search(
                    self.step,
                    states,
                    START,
                    END,
                    max_length,
                    beam_width,
                    constants=constants,
                    length_penalty=length_penalty,
                )
            tokens.append(out.numpy())
            lengths.append(length.numpy())
        return np.concatenate(tokens), np.concatenate(lengths)


# --- training and scores -------------------------------------------------------------------
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


def caption_scores(references, predictions):
    """{"exact": share of predictions equal to one of their references (word for word),
    "bleu": corpus BLEU-4 of the predictions}."""
    exact = np.mean([tokenize(p) in [tokenize(r) for r in refs] for p, refs in zip(predictions, references)])
    bleu = corpus_bleu([[tokenize(r) for r in refs] for refs in references], [tokenize(p) for p in predictions])
    return {"exact": float(exact), "bleu": float(bleu)}


def evaluate(captioner, caption_set, data, beam_width=1, length_penalty=0.0):
    """(predicted captions, scores) of `caption_set`."""
    tokens, _ = captioner(caption_set.images, data.max_words + 1, beam_width, length_penalty)
    predictions = [data.vocabulary.decode(row) for row in tokens]
    return predictions, caption_scores(caption_set.references, predictions)


class _EpochTimer(keras.callbacks.Callback):
    """Seconds of every training epoch, for the report's time per epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def train(config, data=None, verbose=0):
    """Fit with teacher forcing (early stopping on validation loss), then caption the test splits."""
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    data = load_data(config) if data is None else data
    loaded = time.perf_counter()
    model = build_model(config, len(data.vocabulary))
    inputs, targets, weights = teacher_forcing(data.splits["train"], data.vocabulary, data.max_words)
    validation = teacher_forcing(data.splits["validation"], data.vocabulary, data.max_words)
    timer = _EpochTimer()
    history = model.fit(
        inputs,
        targets,
        sample_weight=weights,
        validation_data=validation,
        batch_size=config.batch_size,
        epochs=config.epochs,
        callbacks=[timer, *stop_early("val_loss", config.patience, reduce_lr_patience=1)],
        verbose=verbose,
    )
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
    end = time.perf_counter()
    seconds = dict(
        data=loaded - start,
        fit=fitted - loaded,
        evaluation=end - fitted,
        total=end - start,
        epoch=float(np.mean(timer.seconds)),
    )
    return TrainResult(config, model, history.history, data, predictions, scores, seconds, grid_path)


# --- the picture ------------------------------------------------------------------------------
def write_grid(path, data, predictions, columns=6, rows_per_split=2, method="beam"):
    """A PNG of test images under their predicted captions: the first right ones
    and the first wrong ones of every test split (green: right, red: wrong, with
    the reference below).  Returns `path`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    panels = []  # (image, split, prediction, reference, right)
    for split, by_method in predictions.items():
        caption_set = data.splits[split]
        predicted = by_method[method]
        right = [tokenize(p) in [tokenize(r) for r in refs] for p, refs in zip(predicted, caption_set.references)]
        wrong_rows = [i for i, ok in enumerate(right) if not ok][: columns * rows_per_split // 2]
        right_rows = [i for i, ok in enumerate(right) if ok][: columns * rows_per_split - len(wrong_rows)]
        for i in right_rows + wrong_rows:
            panels.append((caption_set.images[i], split, predicted[i], caption_set.references[i][0], right[i]))
    if not panels:
        raise ValueError("Argument `predictions` holds no captions to draw.")
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 3.3 * rows + 0.5), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image, split, predicted, reference, right) in zip(axes.flat, panels):
        axis.imshow(image)
        text = f"[{split}] " + (predicted or "(nothing)")
        text = _wrap(text) + ("" if right else "\ntrue: " + _wrap(reference))
        axis.text(
            0.5,
            -0.03,
            text,
            transform=axis.transAxes,
            ha="center",
            va="top",
            fontsize=7.5,
            color="darkgreen" if right else "darkred",
        )
    figure.suptitle(
        f"{method} captions: green right, red wrong (reference below)", fontsize=11, y=1 - 0.12 / figure.get_figheight()
    )
    figure.subplots_adjust(
        left=0.01,
        right=0.99,
        top=1 - 0.5 / figure.get_figheight(),
        bottom=0.75 / figure.get_figheight(),
        wspace=0.08,
        hspace=0.45,
    )
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def _wrap(text, width=34):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])


# --- the command ------------------------------------------------------------------------------
def format_report(result):
    """Exact match and BLEU-4 of every test split and decoding, then how the held-out pairs were named."""
    config, data = result.config, result.data
    attention = "with attention" if config.attention else "no attention"
    seconds = result.seconds
    lines = [
        f"{data.source}: {config.cell}{' (keras)' if config.builtin else ''} {config.units} {attention}, "
        f"{len(data.splits['train'])} training images, {len(result.history['loss'])} epochs "
        f"({seconds['epoch']:.1f} s each), {seconds['total']:.0f} s in all "
        f"(data {seconds['data']:.0f} s, fit {seconds['fit']:.0f} s, captions {seconds['evaluation']:.0f} s)",
        "",
        f"{'':<44}{'exact':>8}{'BLEU-4':>8}",
    ]
    titles = {"test": "test images"}
    if data.source == "shapes":
        titles = {"test": "new scenes, seen pairs", "held_out": "scenes with held-out pairs"}
    for split, by_method in result.scores.items():
        for method, score in by_method.items():
            label = f"{titles[split]}, {method}" + (f" (width {config.beam_width})" if method == "beam" else "")
            lines.append(f"{label:<44}{100 * score['exact']:>7.1f}%{score['bleu']:>8.3f}")
    if "held_out" in result.predictions:
        lines += ["", "held-out pairs (beam): named right / seen, and what was said instead"]
        named = held_out_naming(
            data.splits["held_out"].references, result.predictions["held_out"]["beam"], config.held_out_pairs
        )
        for (colour, shape), (count, right, instead) in named.items():
            common = ", ".join(f"{phrase!r} {n}" for phrase, n in instead.most_common(3))
            lines.append(f"  {colour + ' ' + shape:<16}{right:>5} / {count:<5} {common}")
    if result.grid_path:
        lines += ["", f"grid of captions: {result.grid_path}"]
    return "\n".join(lines)


def held_out_naming(references, predictions, pairs):
    """{(colour, shape): (objects of that pair, named right, Counter of "colour shape" said instead)}.

    An object is named right when its "colour shape" appears in the prediction
    at the same object position (first or second) as in the reference.
    """
    pattern = re.compile(r"\ba (?:small|large) (\w+) (\w+)")
    results = {tuple(pair): [0, 0, collections.Counter()] for pair in pairs}
    for refs, predicted in zip(references, predictions):
        said = [" ".join(m) for m in pattern.findall(predicted)]
        for slot, truth in enumerate(pattern.findall(refs[0])):
            if truth not in results:
                continue
            entry = results[truth]
            entry[0] += 1
            spoken = said[slot] if slot < len(said) else "(nothing)"
            if spoken == " ".join(truth):
                entry[1] += 1
            else:
                entry[2][spoken] += 1
    return {pair: tuple(entry) for pair, entry in results.items()}


SERVED_MAX_WORDS = 16  # the longest caption a served model writes (shapes-world captions have at most 11 words)


def serving_endpoints(model, vocabulary=None, beam_width=3, max_length=SERVED_MAX_WORDS):
    """SavedModel signatures (`keras_rnn_lab.serving.export`): "caption" (greedy) and
    "caption_beam" (`beam_width` beams), each image (batch, H, W, 3) uint8 ->
    caption (batch,) strings.  `vocabulary`: the training run's `Vocabulary`
    (default: the shapes world's, which a model trained on it must match)."""
    vocabulary = vocabulary or Vocabulary.shapes()
    outputs = int(model.get_layer("logits").output.shape[-1])
    if outputs != len(vocabulary):
        raise ValueError(
            f"Argument `vocabulary` has {len(vocabulary)} words but the model writes {outputs}: a model trained on "
            "your own captions needs that run's Vocabulary (the .keras file does not hold it)."
        )
    captioner = Captioner(model)
    words = tf.constant(vocabulary.words)
    image = model.get_layer("image").output

    def caption_with(width):
        def caption(image):
            states, constants = captioner.encode(image)
            if width == 1:
                tokens, lengths = greedy_decode(captioner.step, states, START, END, max_length, constants=constants)
            else:
                tokens, lengths, _ = beam_search(
                    captioner.step, states, START, END, max_length, width, constants=constants
                )
            positions = tf.range(tf.shape(tokens)[1])[tf.newaxis, :]
            keep = (positions < lengths[:, tf.newaxis]) & (tokens != END) & (tokens != PAD)
            text = tf.ragged.boolean_mask(tf.gather(words, tokens), keep)
            return {"caption": tf.strings.reduce_join(text, axis=-1, separator=" ")}

        return export.Endpoint(caption, [tf.TensorSpec((None, *image.shape[1:]), image.dtype, name="image")])

    return {"caption": caption_with(1), "caption_beam": caption_with(beam_width)}


def main(argv=None):
    """Train once, print the scores and write the grid; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export.export_command(
            argv[1:], "python -m recipes.captioning", keras.saving.load_model, serving_endpoints
        )
    parser = argparse.ArgumentParser(
        prog="python -m recipes.captioning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--attention", action=argparse.BooleanOptionalAction, help="attend to the feature map (default: on)"
    )
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
    parser.add_argument(
        "--max-images", dest="max_images", type=positive_int, help="use at most this many of your images"
    )
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
    result = train(config, data, verbose=2)
    result.seconds["data"] += loading
    result.seconds["total"] += loading
    print(format_report(result))
    if args.out is not None:
        result.model.save(args.out)
    return result


if __name__ == "__main__":
    main()
