"""keras-tuner HyperModels for the recipes: the recipe's own contract
(`keras_rnn_lab.training.recipe.Recipe`), a search space from `tuning.space`,
and the recipe's own fit, which stops early.

    hypermodel = tuning.hypermodels.get("parity", preset="tiny")
    model = hypermodel.build(keras_tuner.HyperParameters())   # the recipe's defaults

A HyperModel finds its recipe by name when it is made (`recipes.NAME` is
imported then, not before), loads the recipe's data once (on first use) and
shares it between trials; `build(hp)` maps the hyperparameters onto the
recipe's `Config` and calls the recipe's `build_model` (never a copy of it),
then counts parameters against training examples (`diagnostics.capacity`): a
warning, or with `capacity_action="reject"` a failed trial the search skips.
`fit` is the recipe's own `Recipe.fit` for at most `config.epochs` (or the
tuner's Hyperband budget): epochs are never a searched value.
"""

import dataclasses

import keras
import keras_tuner

import recipes
from keras_rnn_lab.diagnostics import capacity
from tuning import space


class RecipeHyperModel(keras_tuner.HyperModel):
    """A recipe's HyperModel: `recipe_name` names the recipe, `search_space`
    maps (hp, base config) to the Config fields a trial changes."""

    def __init__(self, recipe_name, search_space, preset="default", capacity_action="warn", verbose=0, **overrides):
        super().__init__(name=f"{recipe_name}_hypermodel")
        if capacity_action not in capacity.ACTIONS:
            raise ValueError(
                f"Argument `capacity_action` must be one of {capacity.ACTIONS}; received {capacity_action!r}."
            )
        self.recipe = recipes.find(recipe_name)
        self.base_config = self.recipe.config(preset, **overrides)
        self._search_space = search_space
        self.capacity_action = capacity_action
        self.example_unit = self.recipe.example_unit
        self.verbose = verbose
        self._data = None

    @property
    def data(self):
        """The recipe's data for the base config, loaded once for every trial."""
        if self._data is None:
            self._data = self.recipe.load_data(self.base_config)
        return self._data

    def search_space(self, hp):
        return self._search_space(hp, self.base_config)

    def config(self, hp):
        """The recipe Config this trial trains: the base config with `hp` applied."""
        return dataclasses.replace(self.base_config, **self.search_space(hp))

    def build_model(self, config):
        return self.recipe.build_model(config, self.data)

    def count_examples(self):
        return self.recipe.count_examples(self.data)

    def fit_arguments(self, config, model):
        return self.recipe.fit_arguments(config, model, self.data)

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
        """The recipe's fit, with the tuner's `callbacks` (metrics reporting,
        checkpoints) first; `epochs` is Hyperband's budget when it sets one,
        else the config's upper bound."""
        if args:
            raise ValueError("A recipe's HyperModel trains on the recipe's own data; pass no x or y to `search`.")
        config = self.config(hp)
        return self.recipe.fit(
            config,
            self.data,
            model,
            callbacks=callbacks or (),
            epochs=epochs,
            verbose=self.verbose,
            require_validation=True,
            **kwargs,
        )


# --- each recipe's search space: the Config fields a trial sets -------------------
ALL_CELLS = ("lstm", "gru", "simple_rnn")
GATED_CELLS = ("lstm", "gru")


def _common(hp, c, sizes, cells, batch_sizes, low=1e-4, high=3e-2, extra=None, **size_options):
    """Learning rate first, then size, L1/L2, dropout, the recipe's own `extra`
    (hp, c) -> fields, and batch size: every recipe's space in this order
    (tuning.space), so a seeded search proposes the same trials run after run."""
    return {
        **space.learning_rate(hp, c.learning_rate, low=low, high=high),
        **space.recurrent_size(hp, sizes, c.units, cells=cells, default_cell=c.cell, **size_options),
        **space.penalties(hp),
        **space.dropouts(hp, c.dropout, c.recurrent_dropout, c.recurrent_kernel_dropout),
        **(extra(hp, c) if extra else {}),
        **space.batch_size(hp, batch_sizes, c.batch_size),
    }


def parity_space(hp, c):
    return _common(hp, c, (4, 8, 16, 32, 64), ALL_CELLS, (32, 64, 128))


def sentiment_space(hp, c):
    def embedding_dropout(hp, c):
        return {"embedding_dropout": hp.Float("embedding_dropout", 0.0, 0.6, step=0.1, default=c.embedding_dropout)}

    return _common(
        hp,
        c,
        (16, 32, 64, 128),
        GATED_CELLS,
        (32, 64, 128),
        1e-4,
        1e-2,
        embedding_dropout,
        layers=2,
        default_layers=c.layers,
    )


def char_lm_space(hp, c):
    def output_dropout(hp, c):
        return {"output_dropout": hp.Float("output_dropout", 0.0, 0.5, step=0.1, default=c.output_dropout)}

    return _common(hp, c, (64, 128, 256, 512), GATED_CELLS, (32, 64, 128), 3e-4, 1e-2, output_dropout)


def forecast_space(hp, c):
    return _common(hp, c, (16, 32, 64, 128), ALL_CELLS, (32, 64, 128))


def tagging_space(hp, c):
    # The direction right after the size, as always, so a seed proposes the trials it always did.
    return {
        **space.learning_rate(hp, c.learning_rate),
        **space.recurrent_size(hp, (8, 16, 32, 64), c.units, cells=ALL_CELLS, default_cell=c.cell),
        "bidirectional": hp.Boolean("bidirectional", default=c.bidirectional),
        **space.penalties(hp),
        **space.dropouts(hp, c.dropout, c.recurrent_dropout, c.recurrent_kernel_dropout),
        **space.batch_size(hp, (16, 32, 64), c.batch_size),
    }


def video_frames_space(hp, c):
    return _common(hp, c, (16, 32, 64, 128), ALL_CELLS, (32, 64, 128))


def translation_space(hp, c, batch_sizes=(64, 128, 256)):
    # translation searched attention right after the size, as tagging its direction.
    return {
        **space.learning_rate(hp, c.learning_rate, low=3e-4, high=1e-2),
        **space.recurrent_size(hp, (64, 128, 256), c.units, cells=GATED_CELLS, default_cell=c.cell),
        "attention": hp.Boolean("attention", default=c.attention),
        **space.penalties(hp),
        **space.dropouts(hp, c.dropout, c.recurrent_dropout, c.recurrent_kernel_dropout),
        **space.batch_size(hp, batch_sizes, c.batch_size),
    }


def dialogue_space(hp, c):
    # translation's model and fields; ~1,000 training pairs want smaller batches.
    return translation_space(hp, c, batch_sizes=(16, 32, 64))


def captioning_space(hp, c):
    return _common(hp, c, (64, 128, 256), GATED_CELLS, (32, 64, 128), 3e-4, 1e-2)


SEARCH_SPACES = {
    "captioning": captioning_space,
    "char_lm": char_lm_space,
    "dialogue": dialogue_space,
    "forecast": forecast_space,
    "parity": parity_space,
    "sentiment": sentiment_space,
    "tagging": tagging_space,
    "translation": translation_space,
    "video_frames": video_frames_space,
}
HYPERMODELS = tuple(sorted(SEARCH_SPACES))  # the recipes a search can tune


def get(recipe, **kwargs):
    """The HyperModel of the recipe named `recipe` (one of `HYPERMODELS`)."""
    if recipe not in SEARCH_SPACES:
        raise ValueError(f"Argument `recipe` must be one of {sorted(SEARCH_SPACES)}; received {recipe!r}.")
    return RecipeHyperModel(recipe, SEARCH_SPACES[recipe], **kwargs)
