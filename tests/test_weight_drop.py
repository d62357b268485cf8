"""Weight drop: `recurrent_kernel_dropout`, DropConnect on W (keras_rnn_lab/cells/dropout_masks.py).

In training every step uses W~ = W * M / (1 - p), one M ~ Bernoulli(1 - p) of
W's shape per batch; inference uses W.  The fast path (hand-written BPTT) and
Keras's loop over the same cell must use the same M and agree to 1e-5, outputs
and gradients; NumPy stepping with W * M for the captured M is the reference.
"""

import collections
import dataclasses
import functools
import json

import keras
import numpy as np
import numpy_reference
import pytest
import rnn_reference as ref
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.errors import RunError
from keras_rnn_lab.layers import loop_choice, recurrent_layer
from keras_rnn_lab.training import TrainingConfig, runs
from keras_rnn_lab.training.regularization import layer_regularisation

ALL_KINDS = list(ref.KINDS)
LAYERS = ["SimpleRNN", "LSTM", "GRU"]
LAYER_OF_CELL = {"SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}
RATE = 0.5
KEEP_SCALE = 1.0 / (1.0 - RATE)  # a kept weight's factor in M / (1 - p)
SEQUENCES_AND_STATE = {"return_sequences": True, "return_state": True}


def _sequences(rng):
    return rng.normal(size=(ref.BATCH, ref.TIME, ref.FEATURES)).astype("float32")


# --- builders (ref's layer-builder contract) ----------------------------------------
def fast_layer(kind, cell_kwargs, layer_kwargs, n_cells=1):
    """Our fast layer for `kind`; the hand-written BPTT on this CPU."""
    layer_class = getattr(keras_rnn_lab, LAYER_OF_CELL[ref.KINDS[kind].cell])
    return layer_class(**ref.cell_arguments(kind, cell_kwargs), **layer_kwargs)


def unrolled_layer(kind, cell_kwargs, layer_kwargs, n_cells=1):
    """The same layer forced onto Keras's loop over its cell (unroll=True)."""
    return fast_layer(kind, cell_kwargs, {**layer_kwargs, "unroll": True})


def builtin_without_weight_drop(kind, cell_kwargs, layer_kwargs, n_cells=1):
    """keras.layers.RNN over Keras's cell, which has no recurrent_kernel_dropout."""
    kwargs = {k: v for k, v in cell_kwargs.items() if k != "recurrent_kernel_dropout"}
    return ref.builtin_rnn(kind, kwargs, layer_kwargs, n_cells)


def _recording(cell_class):
    """`cell_class` keeping every weight-drop mask M / (1 - p) it draws
    (as an array; inside tf.function, the symbolic tensor)."""

    class Recording(cell_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.drawn = []

        def get_recurrent_kernel_mask(self):
            fresh = self._recurrent_kernel_mask is None
            mask = super().get_recurrent_kernel_mask()
            if fresh and mask is not None:
                self.drawn.append(np.asarray(mask) if tf.executing_eagerly() else mask)
            return mask

    return Recording


def recording_layer(kind, path, **cell_kwargs):
    """A return_sequences layer over a recording cell: our fast layer ("fast")
    or keras.layers.RNN over the cell ("keras")."""
    cell_name = ref.KINDS[kind].cell
    cell_class = _recording(getattr(keras_rnn_lab, cell_name))
    arguments = ref.cell_arguments(kind, cell_kwargs)
    if path == "keras":
        return keras.layers.RNN(cell_class(**arguments), return_sequences=True)
    base = getattr(keras_rnn_lab, LAYER_OF_CELL[cell_name])
    return type(f"Recording{base.__name__}", (base,), {"cell_class": cell_class})(**arguments, return_sequences=True)


def _built_alike(rng, x, *layers):
    """Build `layers` on `x` (inference) and give them the same random weights."""
    for layer in layers:
        layer(x)
    weights = ref.random_weights(layers[0], rng)
    for layer in layers:
        layer.set_weights(weights)
    return layers


def numpy_outputs(kind, cell, x, w):
    """The lecture's equations stepped by hand in NumPy, with recurrent kernel `w`."""
    zeros = np.zeros((x.shape[0], cell.units))
    name = ref.KINDS[kind].cell
    if name == "SimpleRNNCell":
        activation = ref.KINDS[kind].cell_kwargs.get("activation", "tanh")
        step, states = functools.partial(numpy_reference.simple_rnn_step, activation=activation), [zeros]
    elif name == "LSTMCell":
        step, states = numpy_reference.lstm_step, [zeros, zeros]
    else:
        step = functools.partial(
            numpy_reference.gru_step, reset_after=cell.reset_after, update_convention=cell.update_convention
        )
        states = [zeros]
    outputs, _ = numpy_reference.run(step, x, states, U=cell.kernel.numpy(), W=w, b=cell.bias.numpy())
    return outputs


# --- (1) rate 0 is today's layer ------------------------------------------------------
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_rate_zero_is_the_layer_without_weight_drop(kind, training, rng):
    x = tf.constant(_sequences(rng))
    dropout = {"dropout": 0.3, "recurrent_dropout": 0.3, "seed": 3}  # the seed stream must not move either
    today, zero = _built_alike(
        rng,
        x,
        fast_layer(kind, dropout, SEQUENCES_AND_STATE),
        fast_layer(kind, {**dropout, "recurrent_kernel_dropout": 0.0}, SEQUENCES_AND_STATE),
    )
    assert zero.cell.step_recurrent_kernel(True) is zero.cell.recurrent_kernel  # the variable, no op added
    (today_results, today_grads), (zero_results, zero_grads) = (
        ref.run_with_gradients(layer, x, training=training) for layer in (today, zero)
    )
    for mine, theirs in zip(zero_results, today_results):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(zero_grads.values(), today_grads.values()):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_rate_zero_still_equals_the_builtin_cell(kind):
    # Input dropout with a seed: Keras's cells draw that mask as ours do.
    cell = {"recurrent_kernel_dropout": 0.0, "dropout": 0.3, "seed": 11}
    case = {"id": "rate_zero", "layer": SEQUENCES_AND_STATE, "cell": cell, "training": True}
    ref.check_case(kind, case, make_ours=fast_layer, make_reference=builtin_without_weight_drop)


# --- (2) the fast path equals Keras's loop under the same mask ----------------------
WEIGHT_DROP = {"recurrent_kernel_dropout": RATE, "seed": 11}
SAME_MASK_CASES = [
    {"id": "weight_drop", "cell": WEIGHT_DROP},
    {"id": "last_output", "layer": {"return_state": True}, "cell": WEIGHT_DROP},
    {"id": "go_backwards", "layer": {"go_backwards": True, **SEQUENCES_AND_STATE}, "cell": WEIGHT_DROP},
    {
        "id": "with_dropouts_mask_holes",
        "cell": {**WEIGHT_DROP, "dropout": 0.3, "recurrent_dropout": 0.4},
        "mask": "holes",
    },
]


class _RNNSayingWhenItTrains(keras.layers.RNN):
    """keras.layers.RNN telling our cell when a call trains, as our layers do
    (FastRNN.call): both then draw W's mask in training calls only, so the same
    seed gives both the same masks however many inference calls came first."""

    def call(self, sequences, initial_state=None, mask=None, training=False):
        self.cell.drawing_for_training = bool(training)
        try:
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        finally:
            self.cell.drawing_for_training = True


def rnn_of_our_cell(kind, cell_kwargs, layer_kwargs, n_cells=1):
    return _RNNSayingWhenItTrains(ref.our_cell(kind, cell_kwargs), **layer_kwargs)


REFERENCES = {"rnn_of_our_cell": rnn_of_our_cell, "unrolled_keras_loop": unrolled_layer}


@pytest.mark.parametrize("reference", REFERENCES)
@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in SAME_MASK_CASES])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_fast_path_equals_keras_loop_under_the_same_mask(kind, case, reference, monkeypatch):
    # Same seed, same draws in the same order (x's mask, h's mask, then W's): the same M.
    monkeypatch.setattr(ref, "GRADIENT_ATOL", 1e-5)
    case = {"layer": SEQUENCES_AND_STATE, **case, "training": True}
    ref.check_case(kind, case, make_ours=fast_layer, make_reference=REFERENCES[reference])


def test_lecture_gru_fast_path_equals_keras_loop_under_the_same_mask(monkeypatch):
    monkeypatch.setattr(ref, "GRADIENT_ATOL", 1e-5)
    cell = {**WEIGHT_DROP, "update_convention": "lecture"}
    case = {"id": "lecture", "layer": SEQUENCES_AND_STATE, "cell": cell, "training": True}
    ref.check_case("gru_reset_after", case, make_ours=fast_layer, make_reference=rnn_of_our_cell)


# --- (3) one mask per batch, constant across time ------------------------------------
@pytest.mark.parametrize("path", ["fast", "keras"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_one_mask_per_batch_is_used_at_every_step(kind, path, rng):
    x = _sequences(rng)
    (layer,) = _built_alike(rng, x, recording_layer(kind, path, recurrent_kernel_dropout=RATE, seed=3))
    cell = layer.cell
    cell.drawn.clear()  # what the build call drew (Keras draws masks at inference too, unused)

    first = np.asarray(layer(x, training=True))
    if path == "fast":
        assert layer.last_loop.path == "fast"
    assert len(cell.drawn) == 1, "one mask per batch"
    mask = cell.drawn[0]
    assert mask.shape == tuple(cell.recurrent_kernel.shape)
    assert set(np.unique(mask)) == {0.0, KEEP_SCALE}  # weights dropped and kept, scaled by 1/(1-p)
    # Hand stepping with the one W * M / (1 - p) at every step gives the layer's outputs.
    np.testing.assert_allclose(first, numpy_outputs(kind, cell, x, cell.recurrent_kernel.numpy() * mask), atol=1e-5)

    second = np.asarray(layer(x, training=True))
    assert len(cell.drawn) == 2 and not np.array_equal(cell.drawn[1], mask), "a new batch draws a new mask"
    assert np.abs(second - first).max() > 1e-3


@pytest.mark.parametrize("path", ["fast", "keras"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_fixed_seed_reproduces_the_masks(kind, path, rng):
    x = _sequences(rng)
    first, again, other = _built_alike(
        rng, x, *(recording_layer(kind, path, recurrent_kernel_dropout=RATE, seed=s) for s in (7, 7, 8))
    )
    expected = np.asarray(first(x, training=True))
    np.testing.assert_array_equal(again(x, training=True), expected)
    assert np.abs(np.asarray(other(x, training=True)) - expected).max() > 1e-3


@pytest.mark.parametrize("path", ["fast", "keras"])
@pytest.mark.parametrize("kind", ["lstm", "gru_reset_before"])
def test_graph_mode_draws_the_mask_once_before_the_loop(kind, path, rng):
    # Inside tf.function (as under model.fit) a mask drawn inside the while loop
    # would be drawn anew at every step: the outputs would differ from eager's.
    x = _sequences(rng)
    eager, graph = _built_alike(
        rng, x, *(recording_layer(kind, path, recurrent_kernel_dropout=RATE, seed=5) for _ in range(2))
    )
    expected = np.asarray(eager(x, training=True))
    graph.cell.drawn.clear()
    np.testing.assert_allclose(tf.function(lambda x: graph(x, training=True))(x), expected, rtol=0, atol=1e-6)
    assert len(graph.cell.drawn) == 1, "the traced call draws one mask"


# --- (4) inference ignores the rate ------------------------------------------------
@pytest.mark.parametrize("path", ["fast", "keras"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_inference_uses_w_unchanged(kind, path, rng):
    x = _sequences(rng)
    dropped, plain = _built_alike(
        rng, x, recording_layer(kind, path, recurrent_kernel_dropout=0.9, seed=1), recording_layer(kind, path)
    )
    expected = np.asarray(plain(x, training=False))
    np.testing.assert_array_equal(dropped(x, training=False), expected)
    np.testing.assert_array_equal(dropped(x), expected)  # training defaults to off
    if path == "fast":  # our layer: an inference graph draws no mask (a served or TFLite model runs none)
        dropped.cell.drawn.clear()
        tf.function(lambda x: dropped(x, training=False))(x)
        assert not dropped.cell.drawn


# --- (5) serialization ------------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip_keeps_the_rate(name, rng):
    layer = getattr(keras_rnn_lab, name)(ref.UNITS, recurrent_kernel_dropout=0.25, seed=2, return_sequences=True)
    config = layer.get_config()
    assert config["recurrent_kernel_dropout"] == 0.25 and layer.recurrent_kernel_dropout == 0.25
    json.dumps(config)  # what .keras files store must be JSON
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = _sequences(rng)
    _built_alike(rng, x, layer, clone)
    np.testing.assert_array_equal(clone(x), layer(x))
    cell = layer.cell
    assert type(cell).from_config(cell.get_config()).recurrent_kernel_dropout == 0.25


@pytest.mark.parametrize("name", LAYERS)
def test_a_config_without_the_rate_has_no_weight_drop(name):
    # Files saved before weight drop existed, and the built-ins' configs, lack the key.
    layer_config = getattr(keras_rnn_lab, name)(3, recurrent_kernel_dropout=0.4).get_config()
    del layer_config["recurrent_kernel_dropout"]
    assert getattr(keras_rnn_lab, name).from_config(layer_config).recurrent_kernel_dropout == 0.0
    cell_config = getattr(keras_rnn_lab, name + "Cell")(3, recurrent_kernel_dropout=0.4).get_config()
    del cell_config["recurrent_kernel_dropout"]
    assert getattr(keras_rnn_lab, name + "Cell").from_config(cell_config).recurrent_kernel_dropout == 0.0


def test_keras_file_round_trip_gives_the_same_inference_outputs(tmp_path, rng):
    model = keras.Sequential(
        [
            keras.Input((ref.TIME, ref.FEATURES)),
            keras_rnn_lab.LSTM(5, recurrent_kernel_dropout=0.3, return_sequences=True, seed=1),
            keras_rnn_lab.GRU(4, recurrent_kernel_dropout=0.2, return_sequences=True, seed=2),
            keras_rnn_lab.SimpleRNN(3, recurrent_kernel_dropout=0.1, return_sequences=True, seed=3),
            keras.layers.RNN(keras_rnn_lab.LSTMCell(2, recurrent_kernel_dropout=0.4)),
        ]
    )
    model.set_weights(ref.random_weights(model, rng))
    path = tmp_path / "weight_drop.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = _sequences(rng)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=1e-6)
    rates = [layer.cell.recurrent_kernel_dropout for layer in loaded.layers]
    assert rates == pytest.approx([0.3, 0.2, 0.1, 0.4])


# --- (6) bad rates and what cannot drop weights --------------------------------------
@pytest.mark.parametrize("rate, error", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError), ("0.1", TypeError)])
@pytest.mark.parametrize("name", LAYERS)
def test_a_rate_outside_zero_one_names_the_argument(name, rate, error):
    with pytest.raises(error, match=r"Argument `recurrent_kernel_dropout` must be a float in \[0, 1\); received"):
        getattr(keras_rnn_lab, name)(3, recurrent_kernel_dropout=rate)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_weight_drop_never_takes_cudnn(name):
    gpu = [collections.namedtuple("FakeDevice", ["name", "device_type"])("/device:GPU:0", "GPU")]
    layer = getattr(keras_rnn_lab, name)(4, recurrent_kernel_dropout=0.2)
    assert layer.use_cudnn is False  # so Bidirectional's fused (cuDNN) dispatch refuses it too
    choice = loop_choice.choose_loop(layer, backend="tensorflow", gpus=gpu)
    assert choice.path == "fast" and "recurrent_kernel_dropout" in choice.reason
    for backend in ("jax", "torch"):
        assert loop_choice.choose_loop(layer, backend=backend, gpus=gpu).path == "keras"
    both = keras.layers.Bidirectional(layer)
    assert both.forward_layer.use_cudnn is False and both.backward_layer.use_cudnn is False
    assert both.backward_layer.recurrent_kernel_dropout == 0.2
    with pytest.raises(ValueError, match=r"Argument `use_cudnn` must be 'auto' or False with recurrent_kernel_drop"):
        getattr(keras_rnn_lab, name)(4, recurrent_kernel_dropout=0.2, use_cudnn=True)
    layer.use_cudnn = True  # set after the fact: the loop choice still refuses cuDNN
    with pytest.raises(ValueError, match=r"cannot run cuDNN here \(recurrent_kernel_dropout > 0"):
        loop_choice.choose_loop(layer, backend="tensorflow", gpus=gpu)


def test_builtin_layers_take_only_rate_zero():
    assert isinstance(recurrent_layer("lstm", 3, builtin=True, recurrent_kernel_dropout=0.0), keras.layers.LSTM)
    with pytest.raises(ValueError, match=r"`recurrent_kernel_dropout` must be 0 with builtin=True.*received 0.2"):
        recurrent_layer("gru", 3, builtin=True, recurrent_kernel_dropout=0.2)
    with pytest.raises(ValueError, match=r"`recurrent_kernel_dropout` must be 0 with builtin=True"):
        TrainingConfig(builtin=True, recurrent_kernel_dropout=0.2)


# --- recipes' Configs -------------------------------------------------------------
def test_a_config_field_reaches_the_layer():
    layer = recurrent_layer("gru", 3, **layer_regularisation(TrainingConfig(recurrent_kernel_dropout=0.25, seed=4)))
    assert (layer.cell.recurrent_kernel_dropout, layer.cell.seed) == (0.25, 4)
    assert TrainingConfig().recurrent_kernel_dropout == 0.0  # off unless asked for
    # A Config of its own without the field (as tests/test_capacity.py's) has no weight drop.
    fields = ("dropout", "recurrent_dropout", "kernel_l1", "kernel_l2", "recurrent_l1", "recurrent_l2")
    old = dataclasses.make_dataclass("Old", [(name, float, 0.0) for name in fields] + [("seed", int, 0)])
    assert layer_regularisation(old())["recurrent_kernel_dropout"] == 0.0
    # The built-in runs (--builtin) keep working at the default.
    kwargs = layer_regularisation(TrainingConfig(builtin=True))
    assert isinstance(recurrent_layer("lstm", 3, builtin=True, **kwargs), keras.layers.LSTM)


def test_a_run_recorded_before_weight_drop_existed_resumes(tmp_path):
    config = TrainingConfig()
    entry = {"class": f"{type(config).__module__}.{type(config).__qualname__}", **dataclasses.asdict(config)}
    del entry["recurrent_kernel_dropout"]  # as config.json files written before the field existed
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps([entry]))
    run = runs.RunDirectory(tmp_path)
    try:
        run.record_config(config)  # absent there, its default now: the same run
    finally:
        run.close()
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps([entry]))  # the old file again
    run = runs.RunDirectory(tmp_path)
    try:
        with pytest.raises(RunError, match="recurrent_kernel_dropout None there, 0.3 now"):
            run.record_config(dataclasses.replace(config, recurrent_kernel_dropout=0.3))
    finally:
        run.close()


# --- (7) learning happens ---------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.slow  # three 4-5 s fits: learning is shown in the slow run
def test_a_weight_dropped_model_learns(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 2)).astype("float32")
    y = x[:, :, :1].sum(axis=1)  # (64, 1): a running sum the recurrence must carry
    layer = getattr(keras_rnn_lab, name)(16, recurrent_kernel_dropout=0.3, seed=0)
    model = keras.Sequential([keras.Input((6, 2)), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.03), "mse")
    losses = model.fit(x, y, epochs=10, batch_size=16, verbose=0).history["loss"]
    assert layer.last_loop.path == "fast"
    assert losses[-1] < 0.5 * losses[0], losses
