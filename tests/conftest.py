"""Shared pytest setup: quiet TensorFlow and a fixed random state per test."""

import os

# Must be set before TensorFlow is first imported (keras imports it): level 3
# hides TF's C++ INFO/WARNING lines, the oneDNN notice among them.  We keep
# oneDNN itself on (no TF_ENABLE_ONEDNN_OPTS=0): the tests run the numerics
# users get.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (after the environment variable on purpose)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SEED = 1234


@pytest.fixture(autouse=True)
def _fixed_random_state():
    """Every test starts from the same Python, NumPy, TF and Keras seeds."""
    # No keras.backend.clear_session() here: it costs ~0.15 s a test (a full
    # garbage collection) and the tests share no global Keras state.
    keras.utils.set_random_seed(SEED)
    yield


@pytest.fixture
def rng():
    """NumPy generator for test data, independent of the Keras seed."""
    return np.random.default_rng(SEED)


def pytest_configure(config):
    """The compiled kernels are built (once per machine, about a minute) before any
    test runs, so no test with a timeout of its own waits for the compiler."""
    from keras_rnn_lab.layers.compiled import build

    build.load()
