"""Captioned images: caption files, image folders, TFDS captions, a vocabulary.

    captions = read_caption_file("captions.txt")        # {image name: [captions]}
    images, references, names = load_image_folder("photos/", "captions.txt", image_size=64)
    splits = split_by_image(images, references, names, seed=0, validation_fraction=0.1, test_fraction=0.1)
    vocabulary = Vocabulary.from_captions(caption texts)
    inputs, targets, weights = teacher_forcing(splits["train"], vocabulary, max_words=20)

Images are (n, size, size, 3) uint8; each image has one or more reference
captions.  Token ids 0-3 are <pad>, <start>, <end> and <unk>.
"""

import csv
import dataclasses
import os
import re

import numpy as np

from keras_rnn_lab.data import shapes_world, tfds_local
from keras_rnn_lab.data.text_files import read_text
from keras_rnn_lab.errors import UsageError

PAD, START, END, UNK = 0, 1, 2, 3  # token ids; padding must be 0 (decoding pads with 0)
SPECIAL_TOKENS = ("<pad>", "<start>", "<end>", "<unk>")
SHAPES_WORLD_SPLITS = ("train", "validation", "test", "held_out")
CAPTIONS_ARGUMENT = "--captions or `captions_file`"  # captioning's flag, and its Config field
CAPTIONS_FILE = "a UTF-8 text file of image<TAB>caption lines"


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
        """The shapes world's words (`keras_rnn_lab.data.shapes_world`)."""
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


# --- captioned images ---------------------------------------------------------------------
@dataclasses.dataclass
class CaptionSet:
    """Images with their reference captions."""

    images: np.ndarray  # (n, size, size, 3) uint8
    references: list  # n lists of caption strings (one or more per image)
    scenes: shapes_world.Scenes = None  # the shapes world's objects, when generated
    names: list = None  # file names or ids of a user's images

    def __len__(self):
        return len(self.references)


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


def shapes_world_splits(sizes, seed=0, two_object_fraction=0.75, held_out_pairs=(), image_size=64):
    """{"train", "validation", "test", "held_out"} -> CaptionSet of `sizes` (in that order)
    generated shapes-world scenes: the first three without `held_out_pairs`
    (colour, shape), held_out with at least one of them in every scene.

    Each split comes from its own child of one seed sequence, so changing one
    split's size leaves the others as they were.
    """
    streams = np.random.SeedSequence(seed).spawn(len(SHAPES_WORLD_SPLITS))
    splits = {}
    for name, count, stream in zip(SHAPES_WORLD_SPLITS, sizes, streams):
        held_out = name == "held_out"
        scenes = shapes_world.generate_scenes(
            count,
            seed=np.random.default_rng(stream),
            two_object_fraction=two_object_fraction,
            exclude_pairs=None if held_out else held_out_pairs,
            include_pairs=held_out_pairs if held_out else None,
            image_size=image_size,
        )
        splits[name] = CaptionSet(scenes.images, [[text] for text in scenes.captions], scenes)
    return splits


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


# --- a user's files -------------------------------------------------------------------------
def check_sources(images_dir, captions_file, tfds_name):
    """A user's data is an image folder with its caption file, or a TFDS name, or neither."""
    if (images_dir is None) != (captions_file is None):
        raise ValueError(
            "Arguments `images_dir` and `captions_file` go together; received "
            f"images_dir={images_dir!r}, captions_file={captions_file!r}."
        )
    if images_dir is not None and tfds_name is not None:
        raise ValueError(
            f"Pass either `images_dir`/`captions_file` or `tfds_name`, not both; received tfds_name={tfds_name!r}."
        )


def read_caption_file(path, argument=CAPTIONS_ARGUMENT):
    """{image name: [captions]} from `path`, in file order.

    Lines are `name<TAB>caption` (a `#N` suffix on the name, as in Flickr8k's
    token file, is dropped), or the file is a CSV whose header is `image,caption`.
    A file that is not such UTF-8 text is a UsageError naming `argument`.
    """
    lines = read_text(path, argument, CAPTIONS_FILE).splitlines()
    captions = {}
    if lines and lines[0].strip().lower().replace(" ", "") == "image,caption":
        rows = ((number, row) for number, row in enumerate(csv.reader(lines[1:]), start=2))
    else:
        rows = ((number, line.split("\t", 1)) for number, line in enumerate(lines, start=1))
    for number, row in rows:
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise UsageError(
                f"argument {argument}: line {number} of {str(path)!r} must be `image<TAB>caption` (or "
                "`image,caption` "
                f"under an `image,caption` header) with both parts non-empty; received {','.join(row)[:80]!r}."
            )
        name = re.sub(r"#\d+$", "", row[0].strip())
        caption = row[1] if len(row) == 2 else ",".join(row[1:])  # an unquoted comma in a CSV caption
        if not tokenize(caption):
            raise UsageError(
                f"argument {argument}: line {number} of {str(path)!r} has a caption without words: {caption!r}."
            )
        captions.setdefault(name, []).append(caption.strip())
    if not captions:
        raise UsageError(f"argument {argument}: {str(path)!r} holds no captions.")
    return captions


def load_image_folder(images_dir, captions_file, image_size=64, max_images=None):
    """(images (n, size, size, 3) uint8, references, names) for the images `captions_file` names."""
    if not os.path.isdir(images_dir):
        raise UsageError(f"argument --images or `images_dir`: no directory {str(images_dir)!r}")
    captions = read_caption_file(captions_file)
    names = list(captions)[:max_images]
    missing = [name for name in names if not os.path.isfile(os.path.join(images_dir, name))]
    if missing:
        raise UsageError(
            f"Argument `captions_file` names {len(missing)} image(s) not found in {str(images_dir)!r}: {missing[:5]}."
        )
    images = np.stack([_read_image(os.path.join(images_dir, name), image_size) for name in names])
    return images, [captions[name] for name in names], names


def _read_image(path, image_size):
    import tensorflow as tf  # tf.io decodes PNG, JPEG, GIF and BMP

    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.PermissionDeniedError as error:
        raise UsageError(f"Image {path!r} cannot be read ({error.message[:100]}).") from None
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise UsageError(
            f"Image {path!r} could not be decoded as PNG, JPEG, GIF or BMP ({error.message[:100]})."
        ) from None
    return _resized(image, image_size)


def _resized(image, image_size):
    """(h, w, 3) uint8 -> (image_size, image_size, 3) uint8, aspect ratio not kept."""
    import tensorflow as tf

    resized = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()


# --- TFDS ---------------------------------------------------------------------------------
def load_tfds_captions(name, data_dir=None, image_size=64, max_images=None):
    """(images, references, names) of a prepared TFDS captioning set (coco_captions: "image", "captions/text")."""
    split = "train" if max_images is None else f"train[:{max_images}]"
    dataset = tfds_local.load_prepared(
        name, split, data_dir, hint="Prepare it there first, or pass --images and --captions."
    )
    images, references, names = [], [], []
    for example in tfds_local.as_numpy(dataset):
        if "image" not in example or "captions" not in example or "text" not in example["captions"]:
            raise ValueError(
                f"Argument `tfds_name`: {name!r} examples must have 'image' and 'captions' with 'text' (like "
                f"coco_captions); received keys {sorted(example)}."
            )
        texts = [t.decode("utf-8") for t in example["captions"]["text"] if tokenize(t.decode("utf-8"))]
        if not texts:
            continue  # an image without a usable caption teaches nothing
        images.append(_resized(example["image"], image_size))
        references.append(texts)
        image_name = example.get("image/filename", str(len(names)))
        names.append(image_name.decode("utf-8") if isinstance(image_name, bytes) else str(image_name))
    if not images:
        raise ValueError(f"Argument `tfds_name`: {name!r} split {split!r} holds no image with a caption.")
    return np.stack(images), references, names
