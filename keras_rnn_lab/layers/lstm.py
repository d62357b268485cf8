"""Fast LSTM layer: `keras.layers.RNN(LSTMCell)` with hand-written BPTT."""

import keras

from keras_rnn_lab.cells.lstm_cell import LSTMCell
from keras_rnn_lab.layers import loop_choice, tflite_fused
from keras_rnn_lab.layers.bptt.lstm import COMPUTE_ORDER, lstm_recurrence
from keras_rnn_lab.layers.fast_rnn import FastRNN, activation_name


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class LSTM(FastRNN, keras.layers.LSTM):
    """Drop-in for `keras.layers.LSTM` (and an instance of it); the step is
    `keras_rnn_lab.LSTMCell`.

    Same arguments (units, activation, recurrent_activation, use_bias, the
    initializers, unit_forget_bias, regularizers, constraints, dropout,
    recurrent_dropout, seed, return_sequences, return_state, go_backwards,
    stateful, unroll, use_cudnn, the legacy `implementation`), properties and
    weights as the built-in.  With `return_state=True` it returns
    [output, h_T, C_T] like Keras.  On a GPU it runs the built-in's cuDNN
    kernel where Keras would (`keras_rnn_lab.layers.loop_choice`).  Plus weight
    drop, `recurrent_kernel_dropout` = p: in training W~ = W * M / (1 - p),
    M ~ Bernoulli(1 - p) of W's shape, one M per batch shared by every step
    (never on cuDNN, which cannot do it).
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    has_cudnn = True
    gate_order = COMPUTE_ORDER

    def call(self, sequences, initial_state=None, mask=None, training=False):
        self._zero_initial_state = initial_state is None and not self.stateful  # for the fused TFLite op
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        step_mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        if tflite_fused.why_not(self, sequences, step_mask, training) is None:
            self.last_loop = loop_choice.LoopChoice("tflite_fused", "TFLite's fused LSTM op (a TFLite export)")
            return tflite_fused.fused_inner_loop(self, sequences, initial_state, step_mask, self._zero_initial_state)
        return super().inner_loop(sequences, initial_state, mask, training=training)

    def recurrence(self, inputs, projection, initial_state, recurrent_mask, step_mask, training, recurrences=None):
        run = lstm_recurrence if recurrences is None else recurrences.lstm_recurrence
        h, c_last = run(
            inputs,
            projection,
            initial_state[0],
            initial_state[1],
            # Masked in Keras's gate order, then reordered: M follows its weights.
            self.cell.reorder_gates(self.cell.step_recurrent_kernel(training), COMPUTE_ORDER),
            activation_name(self.cell.activation),
            activation_name(self.cell.recurrent_activation),
            recurrent_mask=recurrent_mask,
            step_mask=step_mask,
            training=training,
            return_sequences=self.return_sequences,
        )
        # h: (time, batch, units) with return_sequences, else the last state.
        return h, [h[-1] if self.return_sequences else h, c_last]
