"""Hyperparameter search over the recipes (`python -m tuning.search`).

The package imports keras_rnn_lab before anything else: `python -m
tuning.search` loads this package first, so the command starts without
TensorFlow's C++ start-up lines (keras_rnn_lab.quiet_start) before
keras-tuner imports keras.
"""

import keras_rnn_lab  # noqa: F401  (first: see above)
