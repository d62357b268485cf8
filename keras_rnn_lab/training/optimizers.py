"""The optimizer a recipe's Config asks for, with its gradient clipping, and the
classification compile every classifier recipe shares."""

import math
import numbers

import keras

# Optimizers a Config's `optimizer` field may name (Adam when it has none).
OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}


def check_clip(name, value):
    """A clipping threshold: None (no clipping) or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be None or a positive float; received {value!r} of type {type(value).__name__}."
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Argument `{name}` must be None or a finite float > 0; received {value!r}.")
    return float(value)


def check_clipping(clipnorm, clipvalue):
    """(clipnorm, clipvalue), each None or a finite float > 0, and not both set
    (Keras optimizers take one)."""
    clipnorm, clipvalue = check_clip("clipnorm", clipnorm), check_clip("clipvalue", clipvalue)
    if clipnorm is not None and clipvalue is not None:
        raise ValueError(
            f"Pass one of `clipnorm` and `clipvalue`, not both; received clipnorm={clipnorm!r}, "
            f"clipvalue={clipvalue!r}."
        )
    return clipnorm, clipvalue


def check_learning_rate(rate):
    """A learning rate: a finite number > 0 (bools refused), as a float (inf
    passes `> 0` and turns the first step into NaN)."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"Argument `learning_rate` must be a finite float > 0; received {rate!r} of type {type(rate).__name__}."
        )
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"Argument `learning_rate` must be a finite float > 0; received {rate!r}.")
    return float(rate)


def make_optimizer(config):
    """The optimizer a recipe's Config asks for: `config.optimizer` ("adam", the
    default when the Config has no such field, or "sgd") at `config.learning_rate`,
    with gradient clipping from `config.clipnorm` (each weight's gradient scaled
    down to at most this L2 norm) or `config.clipvalue` (each entry clipped to
    [-v, v]; one of the two at most); None turns it off.  Clipping bounds the
    step an exploding gradient takes; it cannot rescue a forward pass that is
    already infinite."""
    name = getattr(config, "optimizer", "adam")
    if name not in OPTIMIZERS:
        raise ValueError(f"Argument `optimizer` must be one of {sorted(OPTIMIZERS)}; received {name!r}.")
    rate = check_learning_rate(config.learning_rate)
    clipnorm, clipvalue = check_clipping(getattr(config, "clipnorm", None), getattr(config, "clipvalue", None))
    return OPTIMIZERS[name](rate, clipnorm=clipnorm, clipvalue=clipvalue)


def compile_for_classes(model, optimizer, clipnorm=None):
    """Sparse categorical cross-entropy on logits, with accuracy.

    `optimizer`: an optimizer (recipes pass `make_optimizer(config)`, which
    carries the Config's clipping), or a learning rate for Adam clipped at
    `clipnorm`.
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer = keras.optimizers.Adam(optimizer, clipnorm=check_clip("clipnorm", clipnorm))
    elif clipnorm is not None:
        raise ValueError(
            f"Pass `clipnorm` in the optimizer, not beside it; received clipnorm={clipnorm!r} and {optimizer!r}."
        )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
