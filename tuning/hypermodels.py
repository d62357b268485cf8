"""keras-tuner HyperModels for the recipes: the recipe's own `build_model`, a
search space from `tuning.space`, and a `fit` that stops early.

    hypermodel = tuning.hypermodels.get("parity", preset="tiny")
    model = hypermodel.build(keras_tuner.HyperParameters())   # the recipe's defaults

Each HyperModel loads the recipe's data once (on first use) and shares it
between trials; `build(hp)` maps the hyperparameters onto the recipe's
`Config` and calls the recipe's `build_model` (never a copy of it), then counts
parameters against training examples (`keras_rnn_lab.diagnostics.capacity`): a warning, or
with `capacity="reject"` a failed trial the search skips.  `fit` trains for at
most `config.epochs` (or the tuner's Hyperband budget) and stops when the
validation loss stops improving: epochs are never a searched value.
"""

import dataclasses

import keras
import keras_tuner

from keras_rnn_lab import training
from keras_rnn_lab.data import text_data
from keras_rnn_lab.diagnostics import capacity
from recipes import captioning, char_lm, forecast, parity, sentiment, tagging, translation, video_frames
from tuning import space


class RecipeHyperModel(keras_tuner.HyperModel):
    """The shared machinery; a subclass names its recipe and defines
    `search_space(hp)`, `build_model(config)`, `fit_arguments(config, model)` and
    `count_examples()`."""

    recipe = None  # the recipe module
    example_unit = "examples"  # what the guard counts: sequences, tokens, windows

    def __init__(self, preset="default", capacity_action="warn", verbose=0, **config_overrides):
        super().__init__(name=f"{self.recipe_name()}_hypermodel")
        if capacity_action not in capacity.ACTIONS:
            raise ValueError(
                f"Argument `capacity_action` must be one of {capacity.ACTIONS}; received {capacity_action!r}."
            )
        self.base_config = training.config_from_preset(
            self.recipe.Config, self.recipe.PRESETS, preset, **config_overrides
        )
        self.capacity_action = capacity_action
        self.verbose = verbose
        self._data = None

    @classmethod
    def recipe_name(cls):
        return cls.recipe.__name__.rsplit(".", 1)[-1]

    @property
    def data(self):
        """The recipe's data for the base config, loaded once for every trial."""
        if self._data is None:
            self._data = self.load_data(self.base_config)
        return self._data

    def load_data(self, config):
        return self.recipe.load_data(config)

    def config(self, hp):
        """The recipe Config this trial trains: the base config with `hp` applied."""
        return dataclasses.replace(self.base_config, **self.search_space(hp))

    def build(self, hp):
        config = self.config(hp)
        keras.utils.set_random_seed(config.seed)
        model = self.build_model(config)
        try:
            capacity.check_capacity(model, self.count_examples(), self.example_unit, self.capacity_action)
        except capacity.OversizedModelError as error:
            # FAILED, not INVALID: keras-tuner records the trial and moves on, no retries.
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        return model

    def fit(self, hp, model, *args, epochs=None, callbacks=None, **kwargs):
        """Fit on the recipe's training data with early stopping on val_loss.

        `callbacks` carry the tuner's (metrics reporting, checkpoints); `epochs`
        is Hyperband's budget when it sets one, else the config's upper bound.
        """
        config = self.config(hp)
        callbacks = list(callbacks or []) + training.stop_early("val_loss", config.patience)
        fit_kwargs = {**self.fit_arguments(config, model), **kwargs}
        return model.fit(*args, epochs=epochs or config.epochs, callbacks=callbacks, verbose=self.verbose, **fit_kwargs)

    def count_examples(self):
        raise NotImplementedError

    def search_space(self, hp):
        raise NotImplementedError

    def build_model(self, config):
        return self.recipe.build_model(config)

    def fit_arguments(self, config, model):
        """`model.fit` keyword arguments for `model`: data, validation data, batch size."""
        raise NotImplementedError


class ParityHyperModel(RecipeHyperModel):
    """Parity of bit strings: many-to-one, one bit of memory."""

    recipe = parity
    example_unit = "strings"

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate),
            **space.recurrent_size(
                hp, (4, 8, 16, 32, 64), c.units, cells=("lstm", "gru", "simple_rnn"), default_cell=c.cell
            ),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        return len(self.data["train"].labels)

    def fit_arguments(self, config, model):
        train, validation = self.data["train"], self.data["validation"]
        return {
            "x": train.tokens,
            "y": train.labels,
            "batch_size": config.batch_size,
            "validation_data": (validation.tokens, validation.labels),
        }


class SentimentHyperModel(RecipeHyperModel):
    """Sentiment of review snippets: many-to-one over words."""

    recipe = sentiment
    example_unit = "texts"

    def load_data(self, config):
        data = self.recipe.load_data(config)
        # The vocabulary depends on the training texts only, not on any searched value.
        return data, self.recipe.make_vocabulary(config, data.train.texts)

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate, low=1e-4, high=1e-2),
            **space.recurrent_size(
                hp,
                (16, 32, 64, 128),
                c.units,
                layers=2,
                default_layers=c.layers,
                cells=("lstm", "gru"),
                default_cell=c.cell,
            ),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            "embedding_dropout": hp.Float("embedding_dropout", 0.0, 0.6, step=0.1, default=c.embedding_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        return len(self.data[0].train)

    def build_model(self, config):
        return self.recipe.build_model(config, self.data[1])

    def fit_arguments(self, config, model):
        data = self.data[0]
        return {
            "x": self.recipe.training_dataset(data.train, config),
            "validation_data": self.recipe.validation_dataset(data.validation),
            "shuffle": False,  # the training dataset reshuffles itself every epoch (seeded)
        }


class CharLMHyperModel(RecipeHyperModel):
    """Character language model: many-to-many next-character prediction."""

    recipe = char_lm
    example_unit = "training characters"  # every character is a prediction the loss scores

    def load_data(self, config):
        train_text, validation_text = self.recipe.load_data(config)
        if not validation_text:
            raise ValueError("A search needs validation text: the char_lm preset must have validation_fraction > 0.")
        vocabulary = text_data.char_vocabulary(train_text + validation_text)
        return train_text, validation_text, vocabulary

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate, low=3e-4, high=1e-2),
            **space.recurrent_size(hp, (64, 128, 256, 512), c.units, cells=("lstm", "gru"), default_cell=c.cell),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            "output_dropout": hp.Float("output_dropout", 0.0, 0.5, step=0.1, default=c.output_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        return len(self.data[0])

    def build_model(self, config):
        return self.recipe.build_model(config, self.data[2])

    def fit_arguments(self, config, model):
        train_text, validation_text, _ = self.data
        return {
            "x": self.recipe.windows_dataset(model, train_text, config, shuffle=True),
            "validation_data": self.recipe.windows_dataset(model, validation_text, config, shuffle=False),
            "shuffle": False,  # the windows dataset reshuffles itself every epoch
        }


class ForecastHyperModel(RecipeHyperModel):
    """Forecasting a real series: many-to-many regression."""

    recipe = forecast
    example_unit = "training steps"  # every step of every window is a scored forecast

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate),
            **space.recurrent_size(
                hp, (16, 32, 64, 128), c.units, cells=("lstm", "gru", "simple_rnn"), default_cell=c.cell
            ),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        inputs, _ = self.recipe.training_windows(self.data, "train", self.base_config.stride)
        return int(inputs.shape[0] * inputs.shape[1])

    def fit_arguments(self, config, model):
        x, y = self.recipe.training_windows(self.data, "train", config.stride)
        return {
            "x": x,
            "y": y,
            "batch_size": config.batch_size,
            "validation_data": self.recipe.training_windows(self.data, "validation", 1),
        }


class TaggingHyperModel(RecipeHyperModel):
    """Tagging days with their weather: synchronous many-to-many classification."""

    recipe = tagging
    example_unit = "training days"

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate),
            **space.recurrent_size(
                hp, (8, 16, 32, 64), c.units, cells=("lstm", "gru", "simple_rnn"), default_cell=c.cell
            ),
            "bidirectional": hp.Boolean("bidirectional", default=c.bidirectional),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (16, 32, 64), c.batch_size),
        }

    def count_examples(self):
        days = self.data.periods["train"]
        return days.stop - days.start

    def fit_arguments(self, config, model):
        x, y = self.recipe.training_windows(self.data, "train", config.window, config.stride)
        validation = self.recipe.training_windows(self.data, "validation", config.window, config.window)
        return {"x": x, "y": y, "batch_size": config.batch_size, "validation_data": validation}


class VideoFramesHyperModel(RecipeHyperModel):
    """Labelling video frames: a CNN per frame, a recurrent layer over them."""

    recipe = video_frames
    example_unit = "training frames"

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate),
            **space.recurrent_size(
                hp, (16, 32, 64, 128), c.units, cells=("lstm", "gru", "simple_rnn"), default_cell=c.cell
            ),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        return int(self.data["train"].labels.size)

    def fit_arguments(self, config, model):
        train, validation = self.data["train"], self.data["validation"]
        return {
            "x": train.frames,
            "y": train.labels,
            "batch_size": config.batch_size,
            "validation_data": (validation.frames, validation.labels),
        }


class TranslationHyperModel(RecipeHyperModel):
    """Translation: an encoder-decoder, many-to-many with different lengths."""

    recipe = translation
    example_unit = "training target words"  # every target word (and [END]) is a scored prediction

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate, low=3e-4, high=1e-2),
            **space.recurrent_size(hp, (64, 128, 256), c.units, cells=("lstm", "gru"), default_cell=c.cell),
            "attention": hp.Boolean("attention", default=c.attention),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (64, 128, 256), c.batch_size),
        }

    def count_examples(self):
        return sum(len(target) + 1 for target in self.data.pairs["train"][1])

    def build_model(self, config):
        return self.recipe.build_model(config, self.data)

    def fit_arguments(self, config, model):
        (sources, targets), validation = self.data.pairs["train"], self.data.pairs["validation"]
        return {
            "x": self.recipe.teacher_forcing_dataset(
                model, sources, targets, config.batch_size, shuffle_seed=config.seed
            ),
            "validation_data": self.recipe.teacher_forcing_dataset(model, *validation, config.eval_batch_size),
            "shuffle": False,  # the dataset reshuffles itself every epoch (seeded)
        }


class CaptioningHyperModel(RecipeHyperModel):
    """Captioning: an image's features start the decoder, one-to-many."""

    recipe = captioning
    example_unit = "training caption words"

    def search_space(self, hp):
        c = self.base_config
        return {
            **space.learning_rate(hp, c.learning_rate, low=3e-4, high=1e-2),
            **space.recurrent_size(hp, (64, 128, 256), c.units, cells=("lstm", "gru"), default_cell=c.cell),
            **space.penalties(hp),
            **space.dropouts(hp, c.dropout, c.recurrent_dropout),
            **space.batch_size(hp, (32, 64, 128), c.batch_size),
        }

    def count_examples(self):
        _, _, weights = self._teacher_forcing("train")
        return int(weights.sum())  # real words (and ends), padding excluded

    def build_model(self, config):
        return self.recipe.build_model(config, len(self.data.vocabulary))

    def _teacher_forcing(self, split):
        return self.recipe.teacher_forcing(self.data.splits[split], self.data.vocabulary, self.data.max_words)

    def fit_arguments(self, config, model):
        inputs, targets, weights = self._teacher_forcing("train")
        return {
            "x": inputs,
            "y": targets,
            "sample_weight": weights,
            "batch_size": config.batch_size,
            "validation_data": self._teacher_forcing("validation"),
        }


HYPERMODELS = {
    cls.recipe_name(): cls
    for cls in (
        CaptioningHyperModel,
        CharLMHyperModel,
        ForecastHyperModel,
        ParityHyperModel,
        SentimentHyperModel,
        TaggingHyperModel,
        TranslationHyperModel,
        VideoFramesHyperModel,
    )
}


def get(recipe, **kwargs):
    """The HyperModel of the recipe named `recipe` (see `HYPERMODELS`)."""
    if recipe not in HYPERMODELS:
        raise ValueError(f"Argument `recipe` must be one of {sorted(HYPERMODELS)}; received {recipe!r}.")
    return HYPERMODELS[recipe](**kwargs)
