"""Reusable check: a recurrent layer against `keras.layers.RNN` over a built-in cell.

Anything that claims to compute what `keras.layers.RNN(keras.layers.<Cell>(...))`
computes runs through the same grid of options (`CASES`): our cells inside
`keras.layers.RNN` (tests/test_*_cell.py) and the fast layers.  A side of the
comparison is a *layer builder*

    make_layer(kind, cell_kwargs, layer_kwargs, n_cells=1) -> a recurrent layer

that returns one layer for `kind` (a key of `KINDS`); `n_cells=2` asks for one
layer over a stack of two cells (only the "stacked_cells" case does; a builder
that cannot do it leaves that case out with `case_params(exclude=...)`).
`cell_arguments(kind, cell_kwargs)` gives the cell's full arguments, units included.

`check_case(kind, case, make_ours)` is `build_pair` (build the case with both
builders, put random reference weights into ours with
`ours.set_weights(ref.get_weights())`) then `compare`: every returned tensor
(output and states) to `OUTPUT_ATOL`, and the gradients of a scalar loss with
respect to every trainable weight, the inputs and the initial state to
`GRADIENT_ATOL`.  The reference builder defaults to `builtin_rnn`; pass
`make_reference=our_rnn` to compare against `keras.layers.RNN(our cell)`.

    import rnn_reference as ref   # tests/ is on sys.path under pytest
    @pytest.mark.parametrize("case", ref.case_params(exclude=("stacked_cells",)))
    @pytest.mark.parametrize("kind", ref.KINDS)
    def test_fast_layer(kind, case):
        ref.check_case(kind, case, make_ours=my_fast_layer_builder)
"""

import dataclasses

import keras
import numpy as np
import numpy_reference
import pytest
import tensorflow as tf

import keras_rnn_lab

# Tiny shapes: every case runs in well under a second on two CPU cores.
BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
# float32 through 6 steps of matmuls and squashing: observed differences are
# ~1e-7 for outputs, ~1e-6 for gradients; the bounds leave a wide margin.
OUTPUT_ATOL = 1e-5
GRADIENT_ATOL = 1e-4
# Scale of the random weights copied into both sides: large enough that the
# bias (zero by default) and every gate matter, small enough that the
# squashing functions are not saturated over 6 steps.
WEIGHT_SCALE = 0.5


@dataclasses.dataclass(frozen=True)
class Kind:
    cell: str  # class name, the same in `keras.layers` and `keras_rnn_lab`
    cell_kwargs: dict
    n_states: int


KINDS = {
    "simple_rnn_tanh": Kind("SimpleRNNCell", {"activation": "tanh"}, 1),
    "simple_rnn_relu": Kind("SimpleRNNCell", {"activation": "relu"}, 1),
    "lstm": Kind("LSTMCell", {}, 2),
    "gru_reset_after": Kind("GRUCell", {"reset_after": True}, 1),
    "gru_reset_before": Kind("GRUCell", {"reset_after": False}, 1),
}


def kinds_of(cell_name):
    """The kinds whose cell is `cell_name`, e.g. kinds_of("GRUCell")."""
    return [name for name, kind in KINDS.items() if kind.cell == cell_name]


# Masks, (batch, time), True = step is used.
MASKS = {
    # Sequences of length 6, 4 and 1, padded at the end.
    "right_padded": [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]],
    # Holes anywhere; the second sequence starts with masked steps.
    "holes": [[1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 0]],
}

_SEQUENCES_AND_STATE = {"return_sequences": True, "return_state": True}

# Each case: id, and optionally layer (layer kwargs), cell (extra cell kwargs),
# mask (a key of MASKS), initial_state (True: random non-zero), batches (how
# many consecutive batches; the stateful case), stacked ("cells": RNN over two
# cells, "layers": two layers), bidirectional (the merge_mode), training.
CASES = [
    {"id": "last_output"},
    {"id": "return_sequences", "layer": {"return_sequences": True}},
    {"id": "return_state", "layer": {"return_state": True}},
    {"id": "sequences_and_state", "layer": _SEQUENCES_AND_STATE},
    {"id": "go_backwards", "layer": {"go_backwards": True, **_SEQUENCES_AND_STATE}},
    {"id": "mask_right_padded", "layer": _SEQUENCES_AND_STATE, "mask": "right_padded"},
    {"id": "mask_holes", "layer": _SEQUENCES_AND_STATE, "mask": "holes"},
    {"id": "mask_holes_last_output", "layer": {"return_state": True}, "mask": "holes"},
    {
        "id": "mask_holes_zero_output",
        "layer": {"zero_output_for_mask": True, **_SEQUENCES_AND_STATE},
        "mask": "holes",
    },
    {
        "id": "go_backwards_mask_right_padded",
        "layer": {"go_backwards": True, **_SEQUENCES_AND_STATE},
        "mask": "right_padded",
    },
    {"id": "unroll_mask_holes", "layer": {"unroll": True, **_SEQUENCES_AND_STATE}, "mask": "holes"},
    {"id": "stateful_two_batches", "layer": {"stateful": True, **_SEQUENCES_AND_STATE}, "batches": 2},
    {"id": "initial_state", "layer": _SEQUENCES_AND_STATE, "initial_state": True},
    {"id": "stacked_cells", "layer": _SEQUENCES_AND_STATE, "stacked": "cells"},
    {"id": "stacked_layers", "layer": _SEQUENCES_AND_STATE, "stacked": "layers"},
    {"id": "bidirectional_concat", "layer": {"return_sequences": True}, "bidirectional": "concat"},
    {"id": "bidirectional_state", "layer": _SEQUENCES_AND_STATE, "bidirectional": "concat"},
    {
        "id": "bidirectional_mask_holes",
        "layer": {"return_sequences": True},
        "bidirectional": "concat",
        "mask": "holes",
    },
    {
        "id": "dropout_at_inference",
        "layer": _SEQUENCES_AND_STATE,
        "cell": {"dropout": 0.3, "recurrent_dropout": 0.3},
        "training": False,
    },
]


def case_params(exclude=()):
    """CASES as pytest params with readable ids, leaving out the ids in `exclude`."""
    unknown = set(exclude) - {case["id"] for case in CASES}
    if unknown:
        raise ValueError(f"Unknown case ids in `exclude`: {sorted(unknown)}.")
    return [pytest.param(case, id=case["id"]) for case in CASES if case["id"] not in exclude]


# --- builders ---------------------------------------------------------------------
def cell_arguments(kind, cell_kwargs=None):
    """Constructor arguments of `kind`'s cell: units, the kind's own, then overrides."""
    return {"units": UNITS, **KINDS[kind].cell_kwargs, **(cell_kwargs or {})}


def builtin_cell(kind, cell_kwargs=None):
    return getattr(keras.layers, KINDS[kind].cell)(**cell_arguments(kind, cell_kwargs))


def our_cell(kind, cell_kwargs=None):
    return getattr(keras_rnn_lab, KINDS[kind].cell)(**cell_arguments(kind, cell_kwargs))


def rnn_of(make_cell):
    """A layer builder running `make_cell(kind, cell_kwargs)` in `keras.layers.RNN`."""

    def make_layer(kind, cell_kwargs, layer_kwargs, n_cells=1):
        cells = [make_cell(kind, cell_kwargs) for _ in range(n_cells)]
        return keras.layers.RNN(cells if n_cells > 1 else cells[0], **layer_kwargs)

    return make_layer


builtin_rnn = rnn_of(builtin_cell)
our_rnn = rnn_of(our_cell)


class Stack:
    """The layer(s) of one case, called eagerly the way the case asks."""

    def __init__(self, layers):
        self.layers = list(layers)

    def __call__(self, inputs, mask=None, initial_state=None, training=False):
        x = inputs
        for layer in self.layers[:-1]:
            x = layer(x, mask=mask, training=training)
        kwargs = {} if initial_state is None else {"initial_state": initial_state}
        return self.layers[-1](x, mask=mask, training=training, **kwargs)

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        for layer in self.layers:
            count = len(layer.get_weights())
            layer.set_weights(weights[:count])
            weights = weights[count:]
        if weights:
            raise ValueError(f"{len(weights)} weight arrays left over after set_weights.")

    def reset_state(self):
        for layer in self.layers:
            for sub in (layer, getattr(layer, "forward_layer", None), getattr(layer, "backward_layer", None)):
                if getattr(sub, "stateful", False):
                    sub.reset_state()


def build(make_layer, kind, case):
    """The Stack for `case` made of `make_layer`'s layers (not built yet)."""
    cell_kwargs = dict(case.get("cell", {}))
    layer_kwargs = dict(case.get("layer", {}))
    stacked, merge_mode = case.get("stacked"), case.get("bidirectional")
    if stacked == "cells":
        return Stack([make_layer(kind, cell_kwargs, layer_kwargs, n_cells=2)])
    if stacked == "layers":
        first = make_layer(kind, cell_kwargs, {"return_sequences": True})
        return Stack([first, make_layer(kind, cell_kwargs, layer_kwargs)])
    if merge_mode is not None:
        return Stack([keras.layers.Bidirectional(make_layer(kind, cell_kwargs, layer_kwargs), merge_mode=merge_mode)])
    return Stack([make_layer(kind, cell_kwargs, layer_kwargs)])


# --- data ---------------------------------------------------------------------------
@dataclasses.dataclass
class CaseData:
    batches: list  # inputs (batch, time, features), one per consecutive call
    mask: object  # boolean (batch, time) tensor or None
    initial_state: object  # list of (batch, units) tensors or None


def make_data(kind, case, rng):
    batches = [
        tf.constant(rng.normal(size=(BATCH, TIME, FEATURES)), dtype="float32") for _ in range(case.get("batches", 1))
    ]
    mask = None
    if case.get("mask") is not None:
        mask = tf.constant(np.array(MASKS[case["mask"]], dtype=bool))
    initial_state = None
    if case.get("initial_state"):
        initial_state = [
            tf.constant(rng.normal(size=(BATCH, UNITS)), dtype="float32") for _ in range(KINDS[kind].n_states)
        ]
    return CaseData(batches, mask, initial_state)


def random_weights(layer, rng):
    """Random arrays shaped like `layer.get_weights()` (bias included, so it matters)."""
    return [rng.normal(scale=WEIGHT_SCALE, size=w.shape).astype("float32") for w in layer.get_weights()]


def _loss_weights(index, shape):
    # Fixed per returned tensor, so both sides weigh their results alike.
    return tf.constant(np.random.default_rng(100 + index).normal(size=shape), dtype="float32")


def run_with_gradients(subject, inputs, mask=None, initial_state=None, training=False):
    """Results (output first, then states) and named gradients of a scalar loss.

    loss = sum_i sum(result_i * fixed random weights_i).
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        if initial_state is not None:
            tape.watch(initial_state)
        results = subject(inputs, mask=mask, initial_state=initial_state, training=training)
        results = tf.nest.flatten(results)  # stacked cells nest their states
        loss = tf.add_n([tf.reduce_sum(r * _loss_weights(i, r.shape)) for i, r in enumerate(results)])
    sources = {"inputs": inputs}
    for i, state in enumerate(initial_state or []):
        sources[f"initial_state[{i}]"] = state
    for i, weight in enumerate(subject.trainable_weights):
        sources[f"weight[{i}] {weight.path}"] = weight
    grads = tape.gradient(loss, list(sources.values()))
    grads = {
        name: np.zeros(source.shape, "float32") if grad is None else np.asarray(grad)
        for (name, source), grad in zip(sources.items(), grads)
    }
    return [np.asarray(r) for r in results], grads


# --- the check ------------------------------------------------------------------
def build_pair(kind, case, make_ours, rng, make_reference=builtin_rnn):
    """(ours, reference, data): both built, reference weights random, copied to ours."""
    data = make_data(kind, case, rng)
    ours, reference = build(make_ours, kind, case), build(make_reference, kind, case)
    for subject in (reference, ours):
        subject(data.batches[0], mask=data.mask, initial_state=data.initial_state)
    reference.set_weights(random_weights(reference, rng))
    ours.set_weights(reference.get_weights())
    # The build calls above advanced stateful layers; start from zero states.
    ours.reset_state()
    reference.reset_state()
    return ours, reference, data


def assert_same_results(ours, reference, label):
    our_results, our_grads = ours
    ref_results, ref_grads = reference
    assert len(our_results) == len(ref_results), f"{label}: {len(our_results)} results, expected {len(ref_results)}"
    for i, (mine, theirs) in enumerate(zip(our_results, ref_results)):
        name = "output" if i == 0 else f"state[{i - 1}]"
        assert mine.shape == theirs.shape, f"{label}: {name} shape {mine.shape}, expected {theirs.shape}"
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=OUTPUT_ATOL, err_msg=f"{label}: {name}")
    assert len(our_grads) == len(ref_grads), f"{label}: {len(our_grads)} gradients, expected {len(ref_grads)}"
    for (name, mine), (ref_name, theirs) in zip(our_grads.items(), ref_grads.items()):
        assert mine.shape == theirs.shape, f"{label}: d loss / d {name} shape {mine.shape}, expected {theirs.shape}"
        np.testing.assert_allclose(
            mine, theirs, rtol=0, atol=GRADIENT_ATOL, err_msg=f"{label}: d loss / d {name} (reference {ref_name})"
        )


def compare(ours, reference, data, case, label):
    """Run `data` through both built Stacks (weights already equal) and assert equality.

    Stateful cases run their batches one after the other (the second call must
    start from the first call's final states, as the reference does), then
    `reset_state()` and the first batch again, which must reproduce the first call.
    """
    training = case.get("training", False)
    first = None
    for b, inputs in enumerate(data.batches):
        mine = run_with_gradients(ours, inputs, data.mask, data.initial_state, training)
        theirs = run_with_gradients(reference, inputs, data.mask, data.initial_state, training)
        assert_same_results(mine, theirs, f"{label} batch {b}")
        first = mine if first is None else first
    if len(data.batches) > 1:
        ours.reset_state()
        again = run_with_gradients(ours, data.batches[0], data.mask, data.initial_state, training)
        assert_same_results(again, first, f"{label} after reset_state")


def check_case(kind, case, make_ours, rng=None, make_reference=builtin_rnn):
    """Build `case` with both builders and `compare` them (see the module docstring)."""
    rng = np.random.default_rng(0) if rng is None else rng
    ours, reference, data = build_pair(kind, case, make_ours, rng, make_reference)
    compare(ours, reference, data, case, label=f"{kind}/{case['id']}")


# --- the NumPy reference ----------------------------------------------------------
def check_cell_against_numpy(cell, numpy_step, rng, n_states, atol=OUTPUT_ATOL, **step_kwargs):
    """`cell` stepped by hand and run by `keras.layers.RNN` equals `numpy_step`.

    The cell gets random weights (bias included) and a random non-zero initial
    state; `numpy_reference.run(numpy_step, ...)` computes the expectation in
    float64 from the same arrays.
    """
    sequences = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    initial_state = [rng.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(n_states)]
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer(sequences)  # builds the cell
    weights = random_weights(cell, rng)
    cell.set_weights(weights)
    named = dict(zip(("U", "W", "b"), weights))
    expected_outputs, expected_states = numpy_reference.run(
        numpy_step, sequences, initial_state, **named, **step_kwargs
    )

    states = [tf.constant(s) for s in initial_state]
    for t in range(TIME):
        output, states = cell(tf.constant(sequences[:, t]), states)
        np.testing.assert_allclose(output, expected_outputs[:, t], rtol=0, atol=atol, err_msg=f"by hand, step {t}")
    assert len(states) == n_states
    for i, (state, expected) in enumerate(zip(states, expected_states)):
        np.testing.assert_allclose(state, expected, rtol=0, atol=atol, err_msg=f"by hand, final state[{i}]")

    outputs, *final_states = layer(sequences, initial_state=initial_state)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=0, atol=atol, err_msg="keras.layers.RNN outputs")
    assert len(final_states) == n_states
    for i, (state, expected) in enumerate(zip(final_states, expected_states)):
        np.testing.assert_allclose(state, expected, rtol=0, atol=atol, err_msg=f"keras.layers.RNN final state[{i}]")
