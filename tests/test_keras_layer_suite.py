"""Keras's own tests for its recurrent layers, run against ours.

The keras wheel ships the test files of its recurrent layers
(`keras/src/layers/rnn/*_test.py`).  Each is loaded here from the installed
keras, unedited, as a fresh module whose `layers` name is a namespace that
answers `SimpleRNN`, `LSTM`, `GRU` and their cells with keras_rnn_lab's classes
and everything else (`RNN`, `Bidirectional`, `Input`, ...) with Keras's.  So
every assertion Keras makes about its own layers is made about ours: numbers
(Keras's hard-coded expected outputs), shapes, weights, masking, statefulness,
serialization and the `run_layer_test` battery.

This is the one place the tests touch `keras.src` (../shared/PITFALLS.md: the
peer suite needs Keras's `testing.TestCase`); the package never does.
"""

import importlib.util
import pathlib
import types

import keras

import keras_rnn_lab

SUITES = ("simple_rnn", "lstm", "gru", "bidirectional", "stacked_rnn_cells")

# The names a user swaps: `keras.layers.X` -> `keras_rnn_lab.X`.
SWAPPED = ("SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell")

# Keras tests that assert behaviour only Keras's internals can have, with why.
SKIPPED = {}


class _SwappedLayers(types.ModuleType):
    """`keras.src.layers` with the recurrent layers and cells replaced by ours."""

    def __init__(self, layers_module):
        super().__init__("keras_rnn_lab_swapped_layers")
        self._layers = layers_module
        for name in SWAPPED:
            setattr(self, name, getattr(keras_rnn_lab, name))

    def __getattr__(self, name):  # only called for names not set above
        return getattr(self._layers, name)


def _rnn_dir():
    return pathlib.Path(keras.__file__).parent / "src" / "layers" / "rnn"


def _load_swapped(suite):
    """Keras's `<suite>_test.py` as a new module whose `layers` is swapped."""
    path = _rnn_dir() / f"{suite}_test.py"
    spec = importlib.util.spec_from_file_location(f"keras_peer_{suite}_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The tests read the module-global `layers` when they run, so replacing it
    # after import swaps every `layers.LSTM(...)` in the file.
    module.layers = _SwappedLayers(module.layers)
    return module


def _skip(test_class, method_name, reason):
    import pytest

    original = getattr(test_class, method_name)

    def skipped(self, *args, **kwargs):
        pytest.skip(reason)

    skipped.__name__ = original.__name__
    setattr(test_class, method_name, skipped)


def _collect():
    """The suites' TestCase classes, renamed so pytest names the origin."""
    found = {}
    for suite in SUITES:
        module = _load_swapped(suite)
        for name, value in vars(module).items():
            if isinstance(value, type) and name.endswith("Test") and value.__module__ == module.__name__:
                # A subclass so skips never touch the class object other code sees.
                test_class = type(f"Keras_{suite}_{name}", (value,), {"__module__": __name__})
                for method_name, reason in SKIPPED.get(f"{suite}_test.{name}", {}).items():
                    _skip(test_class, method_name, reason)
                found[test_class.__name__] = test_class
    return found


globals().update(_collect())
