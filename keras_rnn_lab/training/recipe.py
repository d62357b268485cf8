"""The one contract between a recipe and everything that trains, tunes,
evaluates or serves it.

A recipe module (`recipes/NAME.py`) defines `RECIPE = Recipe(...)`: its Config
class and presets, and four functions, written once, that its own `train`,
the tuning HyperModels, `keras-rnn-lab evaluate` and distributed training all
call:

    data = recipe.load_data(config)                  # everything the model and the fit need
    model = recipe.build_model(config, data)         # compiled
    recipe.fit_arguments(config, model, data)        # model.fit's x, y, validation_data, ...
    recipe.count_examples(data)                      # scored training examples (capacity guard)

`recipe.fit(config, data, model)` is the training call itself: those
arguments, `config.epochs` and the recipe's callbacks (early stopping by
default).  The library never imports a recipe: `recipes.find(name)` gives a
recipe's contract to whoever asks for it by name.
"""

import dataclasses
import sys
from collections.abc import Callable

import keras

from keras_rnn_lab.training import model_files, runs
from keras_rnn_lab.training.callbacks import check_diverged, stop_early
from keras_rnn_lab.training.command_line import program
from keras_rnn_lab.training.config import config_from_preset


def early_stopping_on_val_loss(config):
    """The callbacks of a recipe that names none: stop when val_loss has not
    improved for `config.patience` epochs and keep the best epoch's weights."""
    return stop_early("val_loss", config.patience)


def fit_checked(model, epochs, callbacks, config=None, **fit_arguments):
    """`model.fit(epochs=epochs, callbacks=callbacks, **fit_arguments)` as every
    recipe trains: inside an active run directory, a rerun asking for no more
    epochs than were done (or rerunning a finished fit) trains nothing and gives
    the recorded History (`runs.kept_history`); a fit whose loss became NaN or
    infinite is a RunError (`callbacks.check_diverged`), never a result."""
    kept = runs.kept_history(model, epochs)
    if kept is not None:
        return kept
    history = model.fit(epochs=epochs, callbacks=callbacks, **fit_arguments)
    check_diverged(callbacks, config)
    return history


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One application, as every consumer sees it (see the module docstring)."""

    name: str
    config_class: type
    presets: dict
    load_data: Callable  # config -> data
    build_model: Callable  # (config, data) -> compiled keras.Model
    fit_arguments: Callable  # (config, model, data) -> dict of model.fit keyword arguments
    count_examples: Callable  # data -> int
    example_unit: str = "examples"  # what count_examples counts: strings, training days, ...
    callbacks: Callable = early_stopping_on_val_loss  # config -> list of keras callbacks
    # The names its models get, a regular expression (default "NAME_.*"): how a
    # model file saved before files recorded their recipe is recognised.
    legacy_model_names: str = None

    @classmethod
    def of(cls, module_name, **declared):
        """The Recipe of the module named `module_name`, made at the module's
        end as `RECIPE = Recipe.of(__name__, count_examples=..., example_unit=...)`:
        its `Config`, `PRESETS`, `load_data`, `build_model` and `fit_arguments`
        by those names, the rest (`declared`) given."""
        module = sys.modules[module_name]
        # Run as `python -m recipes.NAME` the module is __main__; its spec keeps the real name.
        full_name = module.__spec__.name if getattr(module, "__spec__", None) else module_name
        return cls(
            name=full_name.rpartition(".")[2],
            config_class=module.Config,
            presets=module.PRESETS,
            load_data=module.load_data,
            build_model=module.build_model,
            fit_arguments=module.fit_arguments,
            **declared,
        )

    def config(self, preset="default", settings=None, **overrides):
        """The recipe's Config: `preset`, then `settings` (--set), then the
        non-None `overrides` (flags); errors name the field."""
        return config_from_preset(self.config_class, self.presets, preset, settings, **overrides)

    def fit(self, config, data, model, callbacks=(), epochs=None, verbose=0, require_validation=False, **fit_overrides):
        """`model.fit` on the recipe's training data for `epochs` (default
        `config.epochs`) with `callbacks` first (a tuner's) and then the
        recipe's own; returns the History.  `require_validation`: refuse data
        without a validation split (a search scores trials on val_loss)."""
        model_files.tag(model, self.name)  # every file saved of it records the recipe
        arguments = {**self.fit_arguments(config, model, data), **fit_overrides}
        if require_validation and arguments.get("validation_data") is None:
            raise ValueError(
                f"A search needs validation data: this {self.name} Config holds out none "
                "(choose a preset or settings with a validation split)."
            )
        return fit_checked(
            model, epochs or config.epochs, [*callbacks, *self.callbacks(config)], config, verbose=verbose, **arguments
        )

    def save_model(self, model, path):
        """Save `model` at `path` (.keras, atomically), recording this recipe."""
        return model_files.save_model(model, path, self.name)

    def load_model(self, path, argument="--model", **load_arguments):
        """The model at `path` once it proves to be this recipe's (else a
        UsageError naming `argument`); see `training.model_files`."""
        return model_files.load_recipe_model(path, self.name, self.legacy_model_names, argument, **load_arguments)

    def export_command(self, argv, serving_endpoints, numeric_endpoints=None):
        """`python -m recipes.NAME export --model M.keras --out DIR [--format F]`:
        the model (this recipe's, else a usage error) exported with
        `serving_endpoints(model)` (SavedModel) or their numeric twins
        (TFLite, ONNX; `numeric_endpoints(model)` for those that take
        strings); see `keras_rnn_lab.serving.command`."""
        from keras_rnn_lab.serving import command  # TensorFlow's exporters: only when exporting

        prog = program(f"python -m recipes.{self.name} export")
        return command.export_command(argv, prog, self.load_model, serving_endpoints, numeric_endpoints, self.name)

    def train_new_model(self, config, data=None, callbacks=(), verbose=0):
        """A recipe's training from scratch: the seed, the data (loaded unless
        given), a new model and `fit`; returns (data, model, History)."""
        keras.utils.set_random_seed(config.seed)
        data = self.load_data(config) if data is None else data
        model = self.build_model(config, data)
        return data, model, self.fit(config, data, model, callbacks=callbacks, verbose=verbose)
