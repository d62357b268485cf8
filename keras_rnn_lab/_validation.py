"""Argument checks shared by every cell and layer.

Each check raises early with the argument's name, what arrived and what was
expected, so a typo never turns into a deep TensorFlow trace.
"""

import numbers

import keras


def check_positive_int(name, value):
    """`value` as an int; an error naming `name` unless it is a positive int
    (bools are rejected too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument `{name}` must be a positive int; received {value!r} of type {type(value).__name__}.")
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be a positive int; received {value}.")
    return int(value)


MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are unsigned 32-bit


def check_seed(seed, name="seed"):
    """`seed` as an int in [0, 2**32 - 1]; an error naming `name` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"Argument `{name}` must be an int; received {seed!r} of type {type(seed).__name__}.")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"Argument `{name}` must be an int in [0, 2**32 - 1]; received {seed}.")
    return int(seed)


def check_units(units):
    """`units` must be a positive Python int."""
    return check_positive_int("units", units)


def check_rate(name, rate):
    """A dropout rate must be a number in [0, 1)."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be a float in [0, 1); received {rate!r} of type {type(rate).__name__}."
        )
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"Argument `{name}` must be a float in [0, 1); received {rate}.")
    return float(rate)


def get_activation(name, identifier):
    """Resolve a Keras activation, naming the argument when it is unknown."""
    try:
        return keras.activations.get(identifier)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"Argument `{name}` must be a Keras activation (a name such as 'tanh' "
            f"or 'relu', or a callable); received {identifier!r}."
        ) from err


def check_step_input_shape(layer_name, step_shape):
    """A cell sees one time step: (batch, features), i.e. a rank-3 sequence."""
    if len(step_shape) != 2:
        raise ValueError(
            f"{layer_name} expects sequences of rank 3 (batch, time, features); "
            f"received input with shape {(step_shape[0], None) + tuple(step_shape[1:])} "
            f"(rank {len(step_shape) + 1}, time axis shown as None)."
        )
    if step_shape[-1] is None:
        raise ValueError(
            f"{layer_name} needs a known feature size (last axis); received step shape {tuple(step_shape)}."
        )


def check_feature_size(layer_name, inputs, kernel):
    """The last axis of the input must match the kernel built for it."""
    received = inputs.shape[-1]
    expected = kernel.shape[0]
    if received is not None and received != expected:
        raise ValueError(
            f"{layer_name} was built for inputs with {expected} features, but "
            f"received inputs with {received} features (shape {tuple(inputs.shape)})."
        )


def check_split_fractions(validation_fraction, test_fraction):
    """Errors naming the argument unless both shares are in (0, 1) and leave
    images for training (the validation and test shares of a split by image)."""
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"Argument `{name}` must be a float in (0, 1); received {value!r} of type {type(value).__name__}."
            )
        if not 0 < value < 1:
            raise ValueError(f"Argument `{name}` must be a float in (0, 1); received {value!r}.")
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            "Arguments `validation_fraction` + `test_fraction` must leave images for training (sum < 1); "
            f"received {validation_fraction} + {test_fraction}."
        )


def check_number(name, value, interval, inside):
    """`value`, a real number for which `inside(value)` holds; else an error
    naming `name` and the `interval` expected (e.g. "[0, 1]")."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` must be a number; received {value!r} of type {type(value).__name__}.")
    if not inside(value):
        raise ValueError(f"Argument `{name}` must be in {interval}; received {value!r}.")
    return value
