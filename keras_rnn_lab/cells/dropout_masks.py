"""Dropout masks that stay constant across time steps (Gal & Ghahramani, 2016).

A recurrent cell must drop the *same* units at every step of a sequence, or the
recurrent connection is re-sampled every step and learning degrades.  The mask is
therefore drawn once per batch, before the time loop, and reused by every step.

`keras.layers.RNN` draws a cell's masks before its loop only when the cell
inherits Keras's `DropoutRNNCell` mixin, which is not part of the public API.  We
take that class from the public `keras.layers.SimpleRNNCell`'s bases (no import of
`keras.src`) and use it purely as the marker `keras.layers.RNN` checks for: every
method it calls is defined here, in our own class, which comes first in the MRO.

Weight drop (DropConnect on W, Merity et al. 2017) follows the same rule: the
mask M of the recurrent kernel, W~ = W * M / (1 - p), is drawn once per batch
and W~ is formed once, before the time loop; every step multiplies by that W~.
`keras.layers.RNN` calls only `get_dropout_mask` and `get_recurrent_dropout_mask`
before its loop (and the two resets after it), so W's mask is drawn in, and
released with, the recurrent one.
"""

import keras

from keras_rnn_lab._tracing_switch import TracingSwitch


def _keras_dropout_marker():
    for klass in keras.layers.SimpleRNNCell.__mro__:
        if klass.__name__ == "DropoutRNNCell":
            return klass
    # A future Keras without the mixin: our own layers still draw masks before
    # their loop (see `prepare_dropout_masks`).
    return object


_TRACING_AN_EXPORT = TracingSwitch()


def no_draws_in_exports():
    """Inside it, our layers' inference calls draw no dropout masks (the serving exports trace in it)."""
    return _TRACING_AN_EXPORT.turned_on()


class DropoutMasks(_keras_dropout_marker()):
    """Caches one input mask, one recurrent mask and one mask of W (weight drop) per batch.

    Needs `self.dropout`, `self.recurrent_dropout`, `self.recurrent_kernel_dropout`,
    `self.seed_generator` and, for weight drop, the built `self.recurrent_kernel`.
    Masks hold 0 or 1/(1-rate), so the expected activation is unchanged.
    """

    _dropout_mask = None
    _recurrent_dropout_mask = None
    _recurrent_kernel_mask = None  # M / (1 - p), W's shape
    # False while one of our layers runs an inference call (FastRNN.call sets it);
    # a cell under keras.layers.RNN cannot know, and draws as Keras does.
    drawing_for_training = True
    _dropped_recurrent_kernel = None  # W~ = W * M / (1 - p), what every step of the batch uses

    def _drawing(self):
        """Whether to draw the x and h masks now.  Keras draws them before its
        loop in inference calls too (a seeded layer's draws then match the
        built-in's, call for call), except while an export traces the served
        graph (`no_draws_in_exports`): a draw there is dead work and an update
        of the seed that tf2onnx cannot convert."""
        return self.drawing_for_training or not _TRACING_AN_EXPORT.is_on

    def _draw_mask(self, like, rate):
        ones = keras.ops.ones_like(like)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        """Mask for x_t, shape (batch, features); None when dropout is 0, or
        not drawn in an inference call traced for an export (`_drawing`)."""
        if self._dropout_mask is None and self.dropout > 0 and self._drawing():
            self._dropout_mask = self._draw_mask(step_input, self.dropout)
        return self._dropout_mask

    def get_recurrent_dropout_mask(self, step_state):
        """Mask for h_{t-1}, shape (batch, units); None when recurrent_dropout is 0.

        Draws W's weight-drop mask too (after this one): `keras.layers.RNN`
        calls this before its loop, so the loop's steps all find it drawn.
        Keras calls it at inference as well; our layers say when a call does
        not train (`drawing_for_training`), so an inference graph holds no
        random draw (nor the seed's update), which a served or TFLite model
        would otherwise run for nothing."""
        if self._recurrent_dropout_mask is None and self.recurrent_dropout > 0 and self._drawing():
            self._recurrent_dropout_mask = self._draw_mask(step_state, self.recurrent_dropout)
        if self.built and self.drawing_for_training:
            self.get_recurrent_kernel_mask()
        return self._recurrent_dropout_mask

    def get_recurrent_kernel_mask(self):
        """M / (1 - p) for W, shape (units, gates * units), drawn once per batch;
        None when recurrent_kernel_dropout is 0.  Also forms W~ = W * M / (1 - p)."""
        if self._recurrent_kernel_mask is None and self.recurrent_kernel_dropout > 0:
            # In the compute dtype, as the steps' matmuls read W (mixed precision).
            kernel = keras.ops.cast(self.recurrent_kernel, self.compute_dtype)
            self._recurrent_kernel_mask = self._draw_mask(kernel, self.recurrent_kernel_dropout)
            self._dropped_recurrent_kernel = kernel * self._recurrent_kernel_mask
        return self._recurrent_kernel_mask

    def step_recurrent_kernel(self, training):
        """The W a step multiplies h_{t-1} by: this batch's W~ = W * M / (1 - p)
        when training with recurrent_kernel_dropout > 0, else W itself."""
        if not training or not self.recurrent_kernel_dropout:
            return self.recurrent_kernel
        self.get_recurrent_kernel_mask()
        return self._dropped_recurrent_kernel

    def prepare_dropout_masks(self, step_input, step_state):
        """Draw both masks before a time loop, as `keras.layers.RNN` does."""
        return self.get_dropout_mask(step_input), self.get_recurrent_dropout_mask(step_state)

    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask = None
        self.reset_recurrent_kernel_mask()  # drawn with it, released with it

    def reset_recurrent_kernel_mask(self):
        self._recurrent_kernel_mask = None
        self._dropped_recurrent_kernel = None

    def masked_step_inputs(self, inputs, h_prev, training):
        """x_t and h_{t-1} with this batch's masks applied when training."""
        if training:
            if self.dropout > 0:
                inputs = inputs * self.get_dropout_mask(inputs)
            if self.recurrent_dropout > 0:
                h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)
        return inputs, h_prev
