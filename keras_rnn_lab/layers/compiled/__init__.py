"""Compiled recurrence kernels: the whole time loop, forward and BPTT, as two C++ ops.

The TensorFlow-ops fast path (`layers.bptt`) runs about a dozen small ops per
time step: the step's matmul on one core (or as two halves, `loop.two_core_matmul`)
and each piece of gate arithmetic as an op of its own.  `recurrence_kernels.cc`
runs all the steps inside one op, each of its threads owning a slice of the
units: its columns of the step's matmul and all their gate arithmetic in one
pass (README, "With the compiled kernels", for what that gains).  Built on
first use (`build`).

`why_not` decides, per call, whether a layer may use them.  Never in a graph
that is being exported (a served model must need nothing but TensorFlow) nor
under XLA (which cannot compile a custom op); otherwise wherever the kernel
covers the configuration and could be built.
"""

import sys

from keras_rnn_lab._tracing_switch import TracingSwitch

_PLAIN_TENSORFLOW = TracingSwitch()

# Tracing from inside these modules means the graph is being exported or
# converted, even when the user calls them directly (model.export,
# tf.saved_model.save, the TFLite converter, tf2onnx): no custom op there.
_EXPORTERS = ("keras.src.export", "tensorflow.python.saved_model", "tensorflow.lite", "tf2onnx")


def plain_tensorflow_ops():
    """Inside it, our layers trace only TensorFlow's own ops (the exports use it;
    so can a `tf.function` of your own that you will save)."""
    return _PLAIN_TENSORFLOW.turned_on()


def _inside_an_exporter():
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_EXPORTERS):
            return True
        frame = frame.f_back
    return False


def _in_xla():
    import tensorflow as tf

    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # moved in another TensorFlow: assume XLA, the safe answer
        return True
    return not tf.executing_eagerly() and control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def why_not(layer, dtype):
    """None when `layer` may run the compiled kernels on inputs of `dtype`, else why not."""
    import tensorflow as tf

    from keras_rnn_lab.layers.bptt import loop
    from keras_rnn_lab.layers.compiled import build

    if _PLAIN_TENSORFLOW.is_on or loop.tracing_builtin_ops_only():
        return "plain TensorFlow ops asked for (an export is tracing)"
    if dtype != tf.float32:
        return f"the compiled kernels are float32; inputs are {dtype.name}"
    if getattr(layer.cell, "reset_after", True) is False:
        return "the compiled GRU kernel computes reset_after=True"
    if not tf.executing_eagerly() and _inside_an_exporter():
        return "an exporter is tracing (plain TensorFlow ops)"
    if _in_xla():
        return "XLA (jit_compile) cannot compile a custom op"
    _, reason = build.load()
    return reason
