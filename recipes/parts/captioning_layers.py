"""captioning's custom layers: CoordinateChannels and Brightness (the image
encoder's, `feature_map`), WordDropout (the decoder's input) and
CaptionVocabulary (the words the logits score, saved with the model).

Registered as "recipes.captioning>NAME", where these layers were defined
first; files saved before that name them "keras_rnn_lab>NAME", and keep loading.
"""

import keras

from keras_rnn_lab._validation import check_rate
from keras_rnn_lab.data.captions import PAD, SPECIAL_TOKENS, START, UNK


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


@keras.saving.register_keras_serializable(package="recipes.captioning")
class CaptionVocabulary(keras.layers.Layer):
    """The logits (batch, time, vocabulary), unchanged; `words` are what each of
    the vocabulary's ids means.  In the model, so that a saved `.keras` file
    carries the words its captions are written in (like a StringLookup carries
    its vocabulary), for a model trained on anyone's captions."""

    def __init__(self, words, **kwargs):
        super().__init__(**kwargs)
        words = tuple(str(word) for word in words)
        if words[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"Argument `words` must start with {SPECIAL_TOKENS}; received {words[:4]}.")
        self.words = words
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.words):
            raise ValueError(
                f"CaptionVocabulary has {len(self.words)} words but the logits score {input_shape[-1]} ids."
            )

    def call(self, logits):
        return logits

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "words": list(self.words)}


def feature_map(pixels, filters, colour_blind=True):
    """The image encoder: pixels (batch, size, size, 3) in [0, 1] -> (feature map
    (batch, side, side, channels), channels), side = size / 2 ** len(filters).

    The convolutions find shapes; with `colour_blind` they see only each pixel's
    brightest channel, so "square" is learnt once for every colour, and the
    colour comes beside them from a max-pooled RGB map.  Two coordinate channels
    let them see where things are, which the relations need.
    """
    x = Brightness(name="brightness")(pixels) if colour_blind else pixels  # (batch, size, size, 1 or 3)
    x = CoordinateChannels(name="coordinates")(x)  # (batch, size, size, 3 or 5)
    for i, count in enumerate(filters):
        # Strided convolutions, no pooling: each halves the map at a quarter of the cost of a same-size conv + pool.
        x = keras.layers.Conv2D(
            count, 5 if i == 0 else 3, strides=2, padding="same", activation="relu", name=f"conv{i + 1}"
        )(x)
    if not colour_blind:
        return x, filters[-1]
    colour = keras.layers.MaxPooling2D(2 ** len(filters), name="colour")(pixels)  # (batch, side, side, 3)
    return keras.layers.Concatenate(name="shape_and_colour")([x, colour]), filters[-1] + 3


# Files saved before these layers were registered under "recipes.captioning"
# (like every other recipe's) name them "keras_rnn_lab>NAME": keep those loading.
for _layer_class in (CoordinateChannels, Brightness, WordDropout):
    keras.saving.get_custom_objects()[f"keras_rnn_lab>{_layer_class.__name__}"] = _layer_class
