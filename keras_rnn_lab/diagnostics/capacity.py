"""The lecture's warning, "parameters > examples = trouble", as a check.

A network with more trainable parameters than training examples can memorise
its training set instead of learning the rule behind it; it overfits unless
regularised (L1/L2, dropout), stopped early, or given more data.  `check_capacity`
counts both before training starts and warns, or rejects the model (a tuner
trial), when the parameters outnumber the examples.

What counts as an example depends on the task and is the caller's choice: a
classifier of whole sequences learns from sequences, a language model from
every predicted token.
"""

import dataclasses
import math
import warnings

ACTIONS = ("warn", "reject", "ignore")


class OversizedModelWarning(UserWarning):
    """A model with more trainable parameters than training examples."""


class OversizedModelError(ValueError):
    """Raised by `check_capacity(..., action="reject")`."""


@dataclasses.dataclass(frozen=True)
class Capacity:
    """Trainable parameters against training examples."""

    parameters: int
    examples: int
    unit: str  # what one example is: "sequences", "tokens", "windows", ...

    @property
    def ratio(self):
        """Parameters per example (> 1: more parameters than examples)."""
        return self.parameters / self.examples

    @property
    def oversized(self):
        return self.parameters > self.examples

    def describe(self):
        return (
            f"{self.parameters:,} trainable parameters for {self.examples:,} training {self.unit} "
            f"({self.ratio:.3g} per example)"
        )


def trainable_parameters(model):
    """The number of trainable weights' entries of a built Keras model or layer."""
    if not getattr(model, "built", False):
        raise ValueError(
            f"Argument `model` must be built (call it once or give it an Input) to count its parameters; "
            f"received the unbuilt {type(model).__name__} {getattr(model, 'name', '')!r}."
        )
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def check_capacity(model, examples, unit="examples", action="warn"):
    """Count `model`'s trainable parameters against `examples` training examples.

    Returns the `Capacity`.  When the parameters outnumber the examples:
    `action="warn"` issues an `OversizedModelWarning`, `"reject"` raises
    `OversizedModelError`, `"ignore"` does nothing.
    """
    if action not in ACTIONS:
        raise ValueError(f"Argument `action` must be one of {ACTIONS}; received {action!r}.")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples <= 0:
        raise ValueError(f"Argument `examples` must be a positive int; received {examples!r}.")
    capacity = Capacity(trainable_parameters(model), examples, unit)
    if capacity.oversized and action != "ignore":
        message = (
            f"{getattr(model, 'name', 'model')}: {capacity.describe()}. With more parameters than examples "
            "the network can memorise its training set: expect overfitting unless you regularise "
            "(L1/L2, dropout), stop early, shrink the network or add data."
        )
        if action == "reject":
            raise OversizedModelError(message)
        warnings.warn(message, OversizedModelWarning, stacklevel=2)
    return capacity
