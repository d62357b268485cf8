"""Which time loop a fast layer runs: cuDNN, our hand-written BPTT, or Keras's.

A user who swaps `keras.layers.LSTM` for `keras_rnn_lab.LSTM` must never get
the slow choice.  On a GPU the built-in LSTM and GRU run cuDNN's fused kernel,
which beats any loop of per-step ops; there our layers hand the sequence to the
built-in's own dispatch (the same cuDNN call with the same weights, since ours
have the built-in's layout).  Everywhere else our hand-written BPTT is the fast
path, and where it cannot apply Keras's own loop computes the same function.

`choose_loop` is the whole decision, a pure function of the layer's settings,
the backend and the visible GPUs, so it is tested on a CPU machine with
simulated device lists.  The rules for cuDNN are Keras 3.15's own
(`keras.layers.LSTM.inner_loop` and the TensorFlow backend's `cudnn_ok`):

    cuDNN  <=>  backend is tensorflow, a GPU is visible, use_cudnn is True or
                "auto", recurrent_dropout == 0, activation is tanh,
                recurrent_activation is sigmoid, use_bias, not unroll,
                and for the GRU reset_after=True (and Keras's update convention,
                the only one cuDNN computes); ours add recurrent_kernel_dropout == 0
                (weight drop changes W every batch, inside the recurrence).

Masks need no rule here: like the built-in, the cuDNN path accepts right-padded
masks and asserts that at run time.
"""

import collections

import keras

# path: "cudnn" (the built-in's cuDNN kernel), "fast" (our BPTT loop),
# "builtin" (the built-in layer's own dispatch on another backend, cuDNN where
# that backend has it), "keras" (keras.layers.RNN's loop over our cell).
LoopChoice = collections.namedtuple("LoopChoice", ["path", "reason"])


def visible_gpus():
    """The logical GPU devices TensorFlow sees (empty on a CPU machine)."""
    import tensorflow as tf  # only asked on the tensorflow backend

    return tf.config.list_logical_devices("GPU")


def _same_function(function, names):
    """Is `function` Keras's (or TensorFlow's) activation of one of `names`?

    Keras's check is by identity against keras's and tf's functions; so is ours."""
    candidates = [getattr(keras.activations, n) for n in names] + [getattr(keras.ops, n) for n in names]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        candidates += [getattr(tf, n) for n in names]
    return any(function is c for c in candidates)


def cudnn_arguments_ok(layer):
    """Keras's argument conditions for cuDNN; why not as a string, or None."""
    cell = layer.cell
    # First, so the reason names it (such a layer also has use_cudnn=False, see FastRNN).
    if getattr(cell, "recurrent_kernel_dropout", 0):
        return "recurrent_kernel_dropout > 0 (weight drop)"
    if getattr(layer, "use_cudnn", False) is False:
        return "use_cudnn=False" if hasattr(layer, "use_cudnn") else "no cuDNN kernel for this cell"
    if cell.recurrent_dropout:
        return "recurrent_dropout > 0"
    if not _same_function(cell.activation, ["tanh"]):
        return "activation is not tanh"
    if not _same_function(cell.recurrent_activation, ["sigmoid"]):
        return "recurrent_activation is not sigmoid"
    if not cell.use_bias:
        return "use_bias=False"
    if layer.unroll:
        return "unroll=True"
    if hasattr(cell, "reset_after") and not cell.reset_after:
        return "reset_after=False"
    if getattr(cell, "update_convention", "keras") != "keras":
        return "update_convention='lecture'"
    return None


def choose_loop(layer, backend=None, gpus=None):
    """The loop `layer` runs, as a `LoopChoice(path, reason)`.

    `backend` defaults to `keras.backend.backend()` and `gpus` to the GPUs
    TensorFlow sees; tests pass both.  Raises ValueError where Keras's built-in
    does: `use_cudnn=True` when cuDNN cannot run this configuration.
    """
    backend = keras.backend.backend() if backend is None else backend
    cudnn_blocker = cudnn_arguments_ok(layer)
    if cudnn_blocker is None and backend != "tensorflow":
        return LoopChoice("builtin", f"the {backend} backend: the built-in's own loop (cuDNN where it has one)")
    if cudnn_blocker is None:
        gpus = visible_gpus() if gpus is None else gpus
        if gpus:
            return LoopChoice("cudnn", f"a GPU is visible ({gpus[0].name}): Keras's cuDNN kernel")
        cudnn_blocker = "no GPU visible"
    if getattr(layer, "use_cudnn", None) is True:
        raise ValueError(
            f"{type(layer).__name__}(use_cudnn=True) cannot run cuDNN here ({cudnn_blocker}); "
            "pass use_cudnn='auto' to fall back to a non-cuDNN loop, as with keras.layers."
        )
    if backend != "tensorflow":
        return LoopChoice("keras", f"the {backend} backend: the hand-written BPTT is TensorFlow code")
    why_not = layer.fast_path_available()
    if why_not is not None:
        return LoopChoice("keras", why_not)
    return LoopChoice("fast", f"hand-written BPTT ({cudnn_blocker} for cuDNN)")


def check_use_cudnn(value):
    """`use_cudnn` is one of "auto", True, False (Keras's values)."""
    if value is True or value is False or (isinstance(value, str) and value == "auto"):
        return value
    raise ValueError(f"Argument `use_cudnn` must be one of 'auto', True, False; received {value!r}.")
