"""A process-wide on/off switch that an export turns on while it traces a graph.

Three tracing choices are made this way: the TFLite export's builtin-op loops
(`layers.bptt.loop.builtin_ops_only`), its fused LSTM (`layers.tflite_fused.fused_lstm`)
and the exports' draw-free dropout (`cells.dropout_masks.no_draws_in_exports`).
A `with` block rather than an argument, because the choice must reach code that
Keras calls (a layer's `call`) without passing through its signature.
"""

import contextlib


class TracingSwitch:
    """Off unless inside `with switch.turned_on():`; nested blocks restore the outer state."""

    def __init__(self):
        self._on = False

    @property
    def is_on(self):
        return self._on

    @contextlib.contextmanager
    def turned_on(self):
        previous = self._on
        self._on = True
        try:
            yield
        finally:
            self._on = previous
