"""Recipe model files: a `.keras` file that says which recipe made it.

A `.keras` file is a zip archive (config.json, metadata.json,
model.weights.h5).  `save_model` adds one member, keras_rnn_lab.json:

    {"recipe": "parity", "keras_rnn_lab": "0.2.0"}

Keras ignores members it does not know, so the file still loads with plain
`keras.saving.load_model`.  The model is written to a temporary file beside
PATH and renamed into place: a save that is killed or fails never leaves half
a model at PATH (nor replaces a good one).

`load_recipe_model(path, recipe)` checks before loading anything: the file
exists, is a Keras model archive, and was saved by `recipe` (a model saved
before this record existed is recognised by the name the recipe gives its
models).  Each refusal is a `UsageError` naming the argument and the file.
"""

import glob
import json
import os
import re
import tempfile
import zipfile

import keras

from keras_rnn_lab.errors import UsageError, first_line

RECORD = "keras_rnn_lab.json"  # the zip member saying which recipe saved the model
_RECIPE_ATTRIBUTE = "_keras_rnn_lab_recipe"  # a model's recipe, carried from build or load to save


def tag(model, recipe):
    """Mark `model` as `recipe`'s, so every later `save_model` records it."""
    object.__setattr__(model, _RECIPE_ATTRIBUTE, recipe)  # untracked: not a layer, weight or config field
    return model


def recipe_of(model):
    """The recipe `model` was tagged with, or None."""
    return getattr(model, _RECIPE_ATTRIBUTE, None)


def save_model(model, path, recipe=None):
    """Save `model` (a .keras file) at `path` atomically, recording `recipe`
    (default: the recipe it was tagged with; none recorded when unknown); returns `path`."""
    from keras_rnn_lab import __version__

    recipe = recipe or recipe_of(model)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)  # `--out runs/new/model.keras`: checked writable before training
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".keras", dir=directory)
    os.close(handle)
    try:
        model.save(temporary)
        if recipe is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(RECORD, json.dumps({"recipe": recipe, "keras_rnn_lab": __version__}))
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the model from other users
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _read_umask():
    mask = os.umask(0)  # the only way to read it; done once, at import, before any thread of ours runs
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def read_record(path):
    """(the keras_rnn_lab.json record or None, the model's name) of a .keras file,
    or a UsageError saying why it is no Keras model file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise zipfile.BadZipFile("no config.json")
            config = json.loads(archive.read("config.json"))
            record = json.loads(archive.read(RECORD)) if RECORD in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, KeyError) as error:
        raise ValueError(str(error) or type(error).__name__) from None
    name = config.get("config", {}).get("name") if isinstance(config, dict) else None
    return (record if isinstance(record, dict) else None), name


def check_model_file(path, recipe, legacy_names=None, argument="--model"):
    """Refuse (UsageError) unless `path` is a .keras file saved by `recipe`.

    legacy_names: a regular expression the model names of `recipe` match
    (default "RECIPE_.*"), for files saved before the record existed."""
    shown = repr(os.fspath(path))
    if not os.path.exists(path):
        raise UsageError(f"argument {argument}: no such file {shown}; expected a .keras file saved by training (--out)")
    if os.path.isdir(path):
        # A SavedModel, or TensorFlow Serving's base directory of numbered versions of one.
        exported = glob.glob(os.path.join(glob.escape(os.fspath(path)), "saved_model.pb")) + glob.glob(
            os.path.join(glob.escape(os.fspath(path)), "*", "saved_model.pb")
        )
        what = "a SavedModel export (for serving)" if exported else "a directory"
        raise UsageError(f"argument {argument}: {shown} is {what}; expected a .keras file saved by training (--out)")
    try:
        record, name = read_record(path)
    except ValueError as error:
        raise UsageError(
            f"argument {argument}: {shown} is not a Keras model file ({error}); expected a .keras file saved by "
            "training (--out)"
        ) from None
    except OSError as error:
        raise UsageError(f"argument {argument}: cannot read {shown}: {error.strerror or error}") from None
    if record is not None:
        if record.get("recipe") != recipe:
            raise UsageError(
                f"argument {argument}: {shown} is a {record.get('recipe')!r} model; expected a {recipe!r} model "
                f"(saved by `keras-rnn-lab train {recipe} --out FILE`)"
            )
        return
    if not re.fullmatch(legacy_names or rf"{re.escape(recipe)}_.*", str(name)):
        raise UsageError(
            f"argument {argument}: {shown} holds the model {name!r}, which records no recipe and is not one the "
            f"{recipe!r} recipe builds; expected a model saved by `keras-rnn-lab train {recipe} --out FILE`"
        )


def load_recipe_model(path, recipe, legacy_names=None, argument="--model", **load_arguments):
    """`keras.saving.load_model(path)` once `check_model_file` accepts it,
    tagged with `recipe`; a file that still fails to load is a UsageError."""
    check_model_file(path, recipe, legacy_names, argument)
    try:
        model = keras.saving.load_model(path, **load_arguments)
    except Exception as error:  # a damaged archive, weights that do not fit: the user's file, not a bug
        raise UsageError(
            f"argument {argument}: {os.fspath(path)!r} could not be loaded as a {recipe!r} model: {first_line(error)}"
        ) from None
    return tag(model, recipe)
