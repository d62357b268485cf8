"""Put our layers into models built or saved with `keras.layers`.

* A file: `keras_rnn_lab.load_model(path)` is `keras.saving.load_model` with
  our SimpleRNN/LSTM/GRU (and cells) wherever the file says keras.layers',
  anywhere in the model (inside Bidirectional, RNN, nested models).  It reads
  Keras 3 `.keras` files and legacy Keras 2 / tf-keras `.h5` models; ours accept
  the Keras 2 arguments (`implementation`, `time_major=False`) that the
  built-ins reject, so a Keras 2 LSTM file loads here and not with keras.layers.
* A model in memory: `swap_builtin_layers(model)` rebuilds it with ours, the
  same weights and the same compile settings.
* A weights file: build the model with our layers and `load_weights` it (ours
  have the built-ins' variables, in the same order).

Keras 3 configs name built-ins by module (`keras.layers`), which
`custom_objects` cannot override; so the config itself is rewritten to name
our registered classes, in a temporary copy of the file (the user's file is
never touched).
"""

import copy
import json
import pathlib
import shutil
import tempfile
import zipfile

import keras

from keras_rnn_lab.cells.gru_cell import GRUCell
from keras_rnn_lab.cells.lstm_cell import LSTMCell
from keras_rnn_lab.cells.simple_rnn_cell import SimpleRNNCell
from keras_rnn_lab.layers.gru import GRU
from keras_rnn_lab.layers.lstm import LSTM
from keras_rnn_lab.layers.simple_rnn import SimpleRNN

_OURS = (SimpleRNN, LSTM, GRU, SimpleRNNCell, LSTMCell, GRUCell)


def drop_in_objects():
    """{"LSTM": keras_rnn_lab.LSTM, ...}: `custom_objects` for legacy files."""
    return {cls.__name__: cls for cls in _OURS}


def swap_builtin_layers(model):
    """`model` rebuilt with keras_rnn_lab's layers and cells for the built-ins.

    The model must be a Sequential or functional model (a subclassed model has
    no config to rebuild from: construct it with our layers instead).  Weights
    are copied in order, which our layers share with the built-ins; the result
    predicts what `model` predicts.  A compiled model's loss, metrics and
    optimizer settings are compiled into the new one (not the optimizer's
    accumulated state).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model; received {type(model).__name__}.")
    config = model.get_config()
    if not isinstance(config, dict) or "layers" not in config:  # Sequential and functional configs list them
        raise TypeError(
            f"Argument `model` ({type(model).__name__}) is a subclassed model without a layer config; "
            "build it with keras_rnn_lab's layers instead of swapping them in."
        )
    swapped = type(model).from_config(_swap_config(copy.deepcopy(config)))
    swapped.set_weights(model.get_weights())
    if model.compiled and model.get_compile_config():
        swapped.compile_from_config(model.get_compile_config())
    return swapped


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """`keras.saving.load_model(filepath, ...)` with our layers for the built-ins.

    `filepath` is a `.keras` file or a legacy `.h5`/`.hdf5` full-model file.
    Everything else (weights, optimizer state, compile settings) loads as Keras
    loads it.
    """
    path = pathlib.Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"Argument `filepath`: no model file at {str(path)!r}.")
    suffix = path.suffix.lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ValueError(
            f"Argument `filepath` must be a .keras or a legacy .h5/.hdf5 model file; received {str(path)!r}."
        )
    objects = {**drop_in_objects(), **(custom_objects or {})}
    with tempfile.TemporaryDirectory() as folder:
        rewritten = pathlib.Path(folder) / path.name
        if suffix == ".keras":
            _rewrite_keras_archive(path, rewritten)
        else:
            _rewrite_h5_model(path, rewritten)
        return keras.saving.load_model(rewritten, custom_objects=objects, compile=compile, safe_mode=safe_mode)


def _rewrite_keras_archive(source, target):
    """A copy of a `.keras` zip whose config.json names our classes."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copied:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(_swap_config(json.loads(data))).encode("utf-8")
            copied.writestr(item, data)


def _rewrite_h5_model(source, target):
    """A copy of a legacy `.h5` model whose `model_config` names our classes."""
    import h5py  # Keras's own dependency for .h5 files

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as file:
        config = file.attrs.get("model_config")
        if config is None:
            raise ValueError(
                f"Argument `filepath`: {str(source)!r} holds weights only, not a model; build the model "
                "with keras_rnn_lab's layers and call model.load_weights on it."
            )
        config = config.decode("utf-8") if hasattr(config, "decode") else config
        file.attrs["model_config"] = json.dumps(_swap_config(json.loads(config)))


def _swap_config(node):
    """Every serialized keras.layers SimpleRNN/LSTM/GRU(/Cell) made ours, in place.

    Keras 3 (and tf-keras's nested) configs name the module; Keras 2's top-level
    ones only the class, which `custom_objects` maps to ours."""
    if isinstance(node, list):
        return [_swap_config(item) for item in node]
    if not isinstance(node, dict):
        return node
    ours = drop_in_objects().get(node.get("class_name"))
    if ours is not None and node.get("module") == "keras.layers":
        node["module"] = ours.__module__
        node["registered_name"] = keras.saving.get_registered_name(ours)
    for key, value in node.items():
        node[key] = _swap_config(value)
    return node
