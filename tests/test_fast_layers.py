"""The fast layers (keras_rnn_lab.SimpleRNN / LSTM / GRU) against the references.

Each fast layer must compute exactly what `keras.layers.RNN(cell)` computes: the
same option grid as the cell tests, with `training=True` so the hand-written
backward pass (not autodiff) produces the gradients.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import rnn_reference as ref
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.layers.bptt import loop

LAYER_OF_CELL = {"SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}


def fast_layer(kind, cell_kwargs, layer_kwargs, n_cells=1):
    if n_cells != 1:
        raise ValueError("a fast layer owns exactly one cell")
    layer_class = getattr(keras_rnn_lab, LAYER_OF_CELL[ref.KINDS[kind].cell])
    return layer_class(**ref.cell_arguments(kind, cell_kwargs), **layer_kwargs)


def builtin_layer(kind, cell_kwargs, layer_kwargs):
    layer_class = getattr(keras.layers, LAYER_OF_CELL[ref.KINDS[kind].cell])
    return layer_class(**ref.cell_arguments(kind, cell_kwargs), **layer_kwargs)


def in_training(case):
    # training=True runs the custom gradient; without dropout it computes the
    # same function as inference.  The dropout case stays at inference.
    return case if "training" in case else {**case, "training": True}


# "stacked_cells" is keras.layers.RNN over a list of cells: a fast layer owns one cell.
GRID = ref.case_params(exclude=("stacked_cells",))


@pytest.mark.parametrize("case", GRID)
@pytest.mark.parametrize("kind", ref.KINDS)
def test_fast_layer_equals_builtin_with_handwritten_bptt(kind, case):
    ref.check_case(kind, in_training(case), make_ours=fast_layer)


INFERENCE_CASES = [p for p in GRID if p.id in ("sequences_and_state", "go_backwards", "mask_holes", "initial_state")]


@pytest.mark.parametrize("case", INFERENCE_CASES)
@pytest.mark.parametrize("kind", ref.KINDS)
def test_fast_layer_inference_loop_equals_builtin(kind, case):
    # training=False: the loop that saves nothing; gradients come from autodiff.
    ref.check_case(kind, case, make_ours=fast_layer)


# Every per-step product split (`loop.two_core_matmul`, forced at these sizes by
# SPLIT_MIN_PRODUCT = 0) at 128 units; the grid above, at 5 units, runs single matmuls.
WIDE_CASES = [p for p in GRID if p.id in ("sequences_and_state", "mask_holes", "go_backwards", "stateful_two_batches")]


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("case", WIDE_CASES)
@pytest.mark.parametrize("kind", ref.KINDS)
def test_split_matmul_path_equals_builtin(kind, case, training, monkeypatch):
    monkeypatch.setattr(loop, "SPLIT_MIN_PRODUCT", 0)
    monkeypatch.setattr(ref, "UNITS", 128)
    # N(0, 0.1) weights keep 128-unit pre-activations near std 1, out of
    # saturation, so the gradients compared are not all ~0.
    monkeypatch.setattr(ref, "WEIGHT_SCALE", 0.1)
    ref.check_case(kind, in_training(case) if training else case, make_ours=fast_layer)


def test_two_core_matmul_splits_mid_sized_products_and_equals_one_matmul():
    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(64, 256)), "float32")
    mid = tf.constant(rng.normal(size=(256, 256)), "float32")  # 64 x 256 x 256 = 2^22 multiply-adds
    np.testing.assert_allclose(loop.two_core_matmul(mid, 64)(a), tf.matmul(a, mid), rtol=0, atol=1e-3)

    def matmuls_in(matrix, rows):
        spec = tf.TensorSpec([rows, matrix.shape[0]])
        graph = tf.function(loop.two_core_matmul(matrix, rows)).get_concrete_function(spec).graph
        return sum(op.type == "MatMul" for op in graph.get_operations())

    assert matmuls_in(mid, 64) == 2  # two half-depth products
    assert matmuls_in(mid, None) == 2  # unknown batch: ASSUMED_ROWS
    assert matmuls_in(mid, 4) == 1  # 2^18: below SPLIT_MIN_PRODUCT
    assert matmuls_in(tf.zeros([512, 2048]), 64) == 1  # 2^26: above SPLIT_MAX_PRODUCT
    small = tf.constant(rng.normal(size=(64, 32)), "float32")
    np.testing.assert_array_equal(loop.two_core_matmul(small, 8)(a[:8, :64]), tf.matmul(a[:8, :64], small))


@pytest.mark.parametrize(
    "case", [p for p in GRID if p.id in ("mask_holes", "bidirectional_state", "stateful_two_batches")]
)
@pytest.mark.parametrize("kind", ref.KINDS)
def test_fast_layer_equals_rnn_of_our_cell(kind, case):
    ref.check_case(kind, in_training(case), make_ours=fast_layer, make_reference=ref.our_rnn)


@pytest.mark.parametrize("kind", ref.KINDS)
def test_training_dropout_equals_rnn_of_our_cell(kind):
    """With dropout in training both draw the same masks from the same seed, in
    the same order (input mask, then recurrent mask), so results and gradients,
    through the hand-written backward pass, must agree."""
    dropout = {"dropout": 0.3, "recurrent_dropout": 0.4, "seed": 7}
    case = {
        "id": "dropout_training",
        "layer": {"return_sequences": True, "return_state": True},
        "cell": dropout,
        "mask": "holes",
        "training": True,
    }
    ref.check_case(kind, case, make_ours=fast_layer, make_reference=ref.our_rnn)


@pytest.mark.parametrize("kind", ref.KINDS)
def test_graph_mode_gradients_equal_eager(kind):
    """Inside tf.function (as under model.fit) the custom gradient still matches."""
    rng = np.random.default_rng(3)
    case = {"id": "graph", "layer": {"return_sequences": True, "return_state": True}, "mask": "holes"}
    ours, reference, data = ref.build_pair(kind, case, fast_layer, rng)
    eager_results, eager_grads = ref.run_with_gradients(ours, data.batches[0], data.mask, training=True)

    @tf.function
    def graph_grads(x, m):
        with tf.GradientTape() as tape:
            tape.watch(x)
            results = tf.nest.flatten(ours(x, mask=m, training=True))
            loss = tf.add_n([tf.reduce_sum(r * ref._loss_weights(i, r.shape)) for i, r in enumerate(results)])
        return results, tape.gradient(loss, [x] + ours.trainable_weights)

    results, grads = graph_grads(data.batches[0], data.mask)
    for mine, theirs in zip(results, eager_results):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=ref.OUTPUT_ATOL)
    for mine, theirs in zip(grads, eager_grads.values()):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=ref.GRADIENT_ATOL)


@pytest.mark.parametrize("kind", ref.KINDS)
def test_time_length_unknown_when_traced_matches_builtin(kind):
    """A length known only at run time (one backward chunk) gives the built-in's gradients."""
    rng = np.random.default_rng(4)
    case = {"id": "dynamic", "layer": {"return_sequences": True}}
    ours, reference, data = ref.build_pair(kind, case, fast_layer, rng)
    spec = tf.TensorSpec([None, None, ref.FEATURES], "float32")

    def gradients(layer):
        @tf.function(input_signature=[spec])
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
            return tape.gradient(loss, [x] + layer.trainable_weights)

        return run(data.batches[0])

    for mine, theirs in zip(gradients(ours), gradients(reference)):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=ref.GRADIENT_ATOL)


@pytest.mark.parametrize("kind", ref.KINDS)
def test_batch_unknown_when_traced_but_fixed_in_the_loss_matches_builtin(kind):
    """Inputs traced with batch None, labels of a fixed batch (a custom loop's
    closure): the backward loop's carry starts with the gradient's known batch
    size and meets per-step tensors without one, a shape change tf.while_loop
    rejects unless the loop allows it."""
    rng = np.random.default_rng(5)
    case = {"id": "mixed", "layer": {}}
    ours, reference, data = ref.build_pair(kind, case, fast_layer, rng)
    inputs = data.batches[0]
    labels = tf.constant(rng.integers(0, 2, size=ref.BATCH))  # static batch
    head = keras.layers.Dense(2)
    head.build((None, ref.UNITS))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def gradients(layer):
        @tf.function(input_signature=[tf.TensorSpec([None, ref.TIME, ref.FEATURES], "float32")])
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(labels, head(layer(x, training=True)))
            return tape.gradient(value, [x] + layer.trainable_weights)

        return run(inputs)

    for mine, theirs in zip(gradients(ours), gradients(reference)):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=ref.GRADIENT_ATOL)


# --- drop-in replacement and serialization ----------------------------------------
def _token_model(recurrent_layer):
    return keras.Sequential(
        [
            keras.Input((7,), dtype="int32"),
            keras.layers.Embedding(20, 6, mask_zero=True),
            recurrent_layer,
            keras.layers.Dense(2),
        ]
    )


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_swaps_in_for_the_builtin_and_loads_its_weights(name, tmp_path):
    tokens = np.random.default_rng(0).integers(0, 20, size=(4, 7))
    tokens[:, 5:] = 0  # padding, masked by the Embedding
    builtin = _token_model(getattr(keras.layers, name)(8))
    path = str(tmp_path / "builtin.weights.h5")
    builtin.save_weights(path)
    ours = _token_model(getattr(keras_rnn_lab, name)(8))
    ours.load_weights(path)
    np.testing.assert_allclose(ours.predict(tokens, verbose=0), builtin.predict(tokens, verbose=0), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_configs_interchange_with_the_builtin(name):
    """A built-in's config builds our layer and ours builds the built-in's,
    with the same weights and outputs (how a saved model moves across)."""
    builtin = getattr(keras.layers, name)(5, return_sequences=True, go_backwards=True, activity_regularizer="l2")
    x = np.random.default_rng(4).normal(size=(2, 6, 3)).astype("float32")
    builtin(x)
    ours = getattr(keras_rnn_lab, name).from_config(builtin.get_config())
    ours(x)
    ours.set_weights(builtin.get_weights())
    np.testing.assert_allclose(ours(x), builtin(x), rtol=0, atol=1e-6)
    # Our extras: the GRU's update_convention (Keras's by default), the dropout seed, which keras.layers.SimpleRNN
    # accepts but leaves out of its config, and weight drop's recurrent_kernel_dropout (0 from a built-in's config).
    extra = set(ours.get_config()) - set(builtin.get_config())
    assert extra == {"recurrent_kernel_dropout", *{"GRU": ["update_convention"], "SimpleRNN": ["seed"]}.get(name, [])}
    shared = {k: v for k, v in ours.get_config().items() if k not in extra}
    assert getattr(keras.layers, name).from_config(shared).get_config() == builtin.get_config()


def test_config_round_trip_keeps_every_argument():
    layer = keras_rnn_lab.GRU(
        6,
        reset_after=False,
        update_convention="lecture",
        dropout=0.2,
        recurrent_dropout=0.1,
        seed=3,
        return_sequences=True,
        go_backwards=True,
        kernel_regularizer="l2",
        name="g",
    )
    clone = keras_rnn_lab.GRU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.cell.reset_after, clone.cell.update_convention, clone.go_backwards) == (False, "lecture", True)
    assert (clone.dropout, clone.recurrent_dropout, clone.cell.seed) == (0.2, 0.1, 3)


_LOAD_IN_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_rnn_lab  # registers the classes
    for name in sys.argv[2:]:
        model = keras.saving.load_model(f"{sys.argv[1]}/{name}.keras")
        x = np.load(f"{sys.argv[1]}/x.npy")
        np.save(f"{sys.argv[1]}/{name}.out.npy", model.predict(x, verbose=0))
    """
)


def test_keras_file_round_trip_in_a_fresh_process(tmp_path):
    x = np.random.default_rng(1).normal(size=(3, 5, 4)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    expected = {}
    layers = {
        "simple_rnn": keras_rnn_lab.SimpleRNN(4, activation="relu", return_sequences=True),
        "lstm": keras_rnn_lab.LSTM(4, dropout=0.2, recurrent_dropout=0.2),
        "gru": keras_rnn_lab.GRU(4, reset_after=False, update_convention="lecture"),
        "bidirectional_lstm": keras.layers.Bidirectional(keras_rnn_lab.LSTM(3, return_sequences=True)),
    }
    for name, layer in layers.items():
        model = keras.Sequential([keras.Input((5, 4)), layer, keras.layers.Dense(2)])
        model.save(tmp_path / f"{name}.keras")
        expected[name] = model.predict(x, verbose=0)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, str(tmp_path), *layers], check=True, env=env)
    for name in layers:
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.out.npy"), expected[name], rtol=0, atol=1e-6)


# --- the fallback ---------------------------------------------------------------
@pytest.mark.parametrize(
    "layer_kwargs, reason",
    [
        ({"unroll": True}, "unroll"),
        ({"activation": "softplus"}, "softplus"),
        ({"activation": lambda a: a / (1.0 + abs(a))}, "None"),
    ],
)
def test_falls_back_to_keras_loop_where_bptt_does_not_apply(layer_kwargs, reason):
    layer = keras_rnn_lab.LSTM(5, return_sequences=True, **layer_kwargs)
    reference = keras.layers.RNN(
        keras_rnn_lab.LSTMCell(5, **{k: v for k, v in layer_kwargs.items() if k != "unroll"}),
        return_sequences=True,
        unroll=layer_kwargs.get("unroll", False),
    )
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 3)), "float32")
    layer(x), reference(x)
    layer.set_weights(reference.get_weights())
    assert reason in layer.fast_path_available()
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, theirs = layer(x, training=True), reference(x, training=True)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=ref.OUTPUT_ATOL)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(theirs, x), rtol=0, atol=ref.GRADIENT_ATOL)
    assert keras_rnn_lab.LSTM(5).fast_path_available() is None


# --- learning -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_model_fit_learns_a_sequence_task(name):
    """Is the running sum of a +/-1 sequence positive at the end? Loss must fall."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(256, 9, 1)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")
    model = keras.Sequential(
        [keras.Input((9, 1)), getattr(keras_rnn_lab, name)(16), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert history.history["accuracy"][-1] > 0.85, history.history["accuracy"]


# --- bad input --------------------------------------------------------------------
def test_rejects_a_mask_of_the_wrong_shape():
    layer = keras_rnn_lab.LSTM(3)
    x = np.zeros((2, 5, 4), "float32")
    with pytest.raises(ValueError, match=r"`mask` of shape \(batch, time\) = \(2, 5\); received shape \(2, 4\)"):
        layer(x, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="`mask`"):
        layer(x, mask=np.ones((2, 5, 1), bool))


def test_rejects_a_mask_of_the_wrong_dtype():
    with pytest.raises(TypeError, match="boolean `mask`.*float32"):
        keras_rnn_lab.GRU(3)(np.zeros((2, 5, 4), "float32"), mask=np.ones((2, 5), "float32"))


@pytest.mark.parametrize("shape", [(2, 4), (2, 5, 4, 1)])
def test_rejects_inputs_that_are_not_rank_3(shape):
    with pytest.raises(ValueError, match="rank 3"):
        keras_rnn_lab.SimpleRNN(3)(np.zeros(shape, "float32"))


def test_rejects_a_feature_size_other_than_the_built_kernel():
    layer = keras_rnn_lab.LSTM(3)
    layer(np.zeros((2, 5, 4), "float32"))
    with pytest.raises(ValueError, match="built for inputs with 4 features, but received inputs with 7"):
        layer(np.zeros((2, 5, 7), "float32"))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"units": 0}, ValueError, "`units`"),
        ({"units": "8"}, TypeError, "`units`"),
        ({"units": 4, "dropout": 1.0}, ValueError, "`dropout`"),
        ({"units": 4, "recurrent_dropout": -0.5}, ValueError, "`recurrent_dropout`"),
        ({"units": 4, "activation": "nope"}, ValueError, "`activation`"),
    ],
)
def test_constructor_errors_name_the_argument(kwargs, error, match):
    for name in ("SimpleRNN", "LSTM", "GRU"):
        with pytest.raises(error, match=match):
            getattr(keras_rnn_lab, name)(**kwargs)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float64"])
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_other_dtypes_match_rnn_of_our_cell(name, policy):
    """The hand-written backward pass in other compute dtypes (the LSTM's fused
    kernel has no bfloat16 or float64 version, so it must take the op-by-op path)."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        x = tf.constant(np.random.default_rng(5).normal(size=(3, 6, 4)), "float32")
        ours = getattr(keras_rnn_lab, name)(5, return_sequences=True)
        reference = keras.layers.RNN(getattr(keras_rnn_lab, name + "Cell")(5), return_sequences=True)
        ours(x), reference(x)
        ours.set_weights(reference.get_weights())
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            results = [tf.cast(layer(x, training=True), "float32") for layer in (ours, reference)]
            losses = [tf.reduce_sum(r * r) for r in results]
        # bfloat16 keeps 8 bits of mantissa (~2-3 significant digits): compare at
        # that precision; float64 at the usual bounds.
        atol = (0.05, 0.3) if policy == "mixed_bfloat16" else (ref.OUTPUT_ATOL, ref.GRADIENT_ATOL)
        np.testing.assert_allclose(results[0], results[1], rtol=0, atol=atol[0])
        for mine, theirs in zip(
            tape.gradient(losses[0], ours.trainable_weights), tape.gradient(losses[1], reference.trainable_weights)
        ):
            np.testing.assert_allclose(
                np.asarray(tf.cast(mine, "float32")), np.asarray(tf.cast(theirs, "float32")), rtol=0, atol=atol[1]
            )
    finally:
        keras.mixed_precision.set_global_policy("float32")
