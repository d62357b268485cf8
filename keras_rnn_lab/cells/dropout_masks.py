"""Dropout masks that stay constant across time steps (Gal & Ghahramani, 2016).

A recurrent cell must drop the *same* units at every step of a sequence, or the
recurrent connection is re-sampled every step and learning degrades.  The mask is
therefore drawn once per batch, before the time loop, and reused by every step.

`keras.layers.RNN` draws a cell's masks before its loop only when the cell
inherits Keras's `DropoutRNNCell` mixin, which is not part of the public API.  We
take that class from the public `keras.layers.SimpleRNNCell`'s bases (no import of
`keras.src`) and use it purely as the marker `keras.layers.RNN` checks for: every
method it calls is defined here, in our own class, which comes first in the MRO.
"""

import keras


def _keras_dropout_marker():
    for klass in keras.layers.SimpleRNNCell.__mro__:
        if klass.__name__ == "DropoutRNNCell":
            return klass
    # A future Keras without the mixin: our own layers still draw masks before
    # their loop (see `prepare_dropout_masks`).
    return object


class DropoutMasks(_keras_dropout_marker()):
    """Caches one input mask and one recurrent mask per batch.

    Needs `self.dropout`, `self.recurrent_dropout` and `self.seed_generator`.
    Masks hold 0 or 1/(1-rate), so the expected activation is unchanged.
    """

    _dropout_mask = None
    _recurrent_dropout_mask = None

    def _draw_mask(self, like, rate):
        ones = keras.ops.ones_like(like)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        """Mask for x_t, shape (batch, features); None when dropout is 0."""
        if self._dropout_mask is None and self.dropout > 0:
            self._dropout_mask = self._draw_mask(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_state):
        """Mask for h_{t-1}, shape (batch, units); None when recurrent_dropout is 0."""
        if self._recurrent_dropout_mask is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._draw_mask(step_state, self.recurrent_dropout)
        return self._recurrent_dropout_mask

    def prepare_dropout_masks(self, step_input, step_state):
        """Draw both masks before a time loop, as `keras.layers.RNN` does."""
        return self.get_dropout_mask(step_input), self.get_recurrent_dropout_mask(step_state)

    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask = None

    def masked_step_inputs(self, inputs, h_prev, training):
        """x_t and h_{t-1} with this batch's masks applied when training."""
        if training:
            if self.dropout > 0:
                inputs = inputs * self.get_dropout_mask(inputs)
            if self.recurrent_dropout > 0:
                h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        return inputs, h_prev
