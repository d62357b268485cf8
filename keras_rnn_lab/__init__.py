"""keras_rnn_lab: the lecture's recurrent networks as tested Keras 3 layers.

Cells (one time step, run them with `keras.layers.RNN`):
    SimpleRNNCell, LSTMCell, GRUCell
Fast sequence layers (drop-ins for the Keras layers of the same names):
    SimpleRNN, LSTM, GRU
Models built or saved with keras.layers:
    load_model(path) (.keras or Keras 2 .h5), swap_builtin_layers(model), drop_in_objects()

The parts (each a subpackage; imports run downwards only, and nothing here
imports `recipes` or `tuning` but the command line, by name, when a command
uses one):
    cells/        the lecture's cells, one step each
    layers/       the fast layers, their hand-written BPTT (layers/bptt/), the loop choice
    data/         offline data: corpora, labelled text, series, moving digits, the shapes
                  world, captions, sentence pairs; TFDS only when prepared
    decoding/     greedy and beam search, stepping a trained decoder, character sampling
    training/     the recipe contract, Config base, command line, callbacks, optimizers, runs
    serving/      SavedModel export
    diagnostics/  gradient probe, capacity, BLEU, forecast baselines
    benchmark/    the speed benchmark command

Run as one of the commands (`keras-rnn-lab`, `python -m recipes.NAME`, ...),
the package first imports TensorFlow without its C++ start-up lines
(`quiet_start`: --debug or TF_CPP_MIN_LOG_LEVEL=0 shows them); imported by
your own program, it leaves TensorFlow's output alone.
"""

from keras_rnn_lab import quiet_start as _quiet_start

_quiet_start.quiet_start()  # before keras imports tensorflow; only for the commands (see keras_rnn_lab.quiet_start)

from keras_rnn_lab.cells.gru_cell import GRUCell, convert_gru_update_convention  # noqa: E402
from keras_rnn_lab.cells.lstm_cell import LSTMCell  # noqa: E402
from keras_rnn_lab.cells.simple_rnn_cell import SimpleRNNCell  # noqa: E402
from keras_rnn_lab.layers.gru import GRU  # noqa: E402
from keras_rnn_lab.layers.lstm import LSTM  # noqa: E402
from keras_rnn_lab.layers.simple_rnn import SimpleRNN  # noqa: E402
from keras_rnn_lab.layers.swap import drop_in_objects, load_model, swap_builtin_layers  # noqa: E402

__version__ = "0.2.0"

__all__ = [
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "convert_gru_update_convention",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "drop_in_objects",
    "load_model",
    "swap_builtin_layers",
]
