"""Recipes, each runnable as `python -m recipes.NAME` (and `keras-rnn-lab train NAME`).

`CATALOGUE` lists them (name -> topology, what it shows) without importing
any; `TRAINABLE` names those that define a `RECIPE`
(`keras_rnn_lab.training.recipe.Recipe`: one model trained by `model.fit`,
which tuning, `evaluate` and distributed training reuse); `find(name)` imports
that one recipe and returns its RECIPE.

The package imports keras_rnn_lab before anything else: `python -m
recipes.NAME` loads this package first, so the command starts without
TensorFlow's C++ start-up lines (keras_rnn_lab.quiet_start) before the recipe
imports keras.
"""

import importlib

import keras_rnn_lab  # noqa: F401  (first: see above)

CATALOGUE = {
    "char_lm": ("many-to-many", "character language model and text generation (Shakespeare's sonnets)"),
    "parity": ("many-to-one", "is the number of 1s even? trained on short strings, tested on 50x longer"),
    "sentiment": ("many-to-one", "review snippets -> positive/negative, beside a bag-of-words baseline"),
    "forecast": ("many-to-many", "next value of a real series (Seattle temperatures, stock prices)"),
    "tagging": ("many-to-many", "a weather label for every day of a sequence"),
    "video_frames": ("many-to-many", "a label for every frame of moving handwritten digits (CNN + RNN)"),
    "translation": ("many-to-many (encoder-decoder)", "English -> French number words, greedy and beam search"),
    "dialogue": ("many-to-many (encoder-decoder)", "prompt -> reply on chatterbot-corpus, beside a retrieval baseline"),
    "captioning": ("one-to-many", "image -> caption in a shapes world, held-out colour-shape pairs"),
    "vanishing_gradients": ("BPTT, no training", "the lecture's demo: gradient norm against distance"),
    "long_memory": ("many-to-one", "distractor and adding tasks over growing lengths"),
    "exploding_gradients": ("many-to-one", "divergence without clipping, training with it"),
}
TRAINABLE = (
    "captioning",
    "char_lm",
    "dialogue",
    "forecast",
    "parity",
    "sentiment",
    "tagging",
    "translation",
    "video_frames",
)


def find(name):
    """The `Recipe` of `recipes.NAME`, imported now (only the recipe asked for
    loads); a ValueError naming `recipe` when there is no such recipe or it
    trains no single model."""
    if name not in CATALOGUE:
        raise ValueError(f"Argument `recipe` must be one of {sorted(CATALOGUE)}; received {name!r}.")
    if name not in TRAINABLE:
        raise ValueError(f"Argument `recipe`: {name!r} trains no single model; choose from {sorted(TRAINABLE)}.")
    return importlib.import_module(f"{__name__}.{name}").RECIPE
