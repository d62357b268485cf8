"""The compiled recurrence kernels (`keras_rnn_lab.layers.compiled`).

The option grid of tests/test_fast_layers.py runs on them wherever they could
be built (this file checks that they really ran); CI runs that file again with
KERAS_RNN_LAB_KERNELS=0 for the TensorFlow loop.  Here: the compiled path
against the TensorFlow-ops path at sizes where the op's threads split
the work, with every option that changes the loop (and again, slow, on kernels
built without AVX-512 and without AVX2/FMA: packed_gemm.h's AVX2 and Eigen
branches); the fallbacks and their
reasons; and graphs that are exported or XLA-compiled never holding the op.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import rnn_reference as ref
import tensorflow as tf
from test_fast_layers import GRID, fast_layer, in_training

import keras_rnn_lab
from keras_rnn_lab.layers import compiled
from keras_rnn_lab.layers.compiled import build, recurrences

KERNELS_MISSING = build.load()[1]
if KERNELS_MISSING and os.environ.get("CI") and os.environ.get(build.SWITCH) != "0":
    # CI has a compiler: there the kernels must build, or half the project goes untested.
    raise RuntimeError(f"CI: {KERNELS_MISSING}")
needs_kernels = pytest.mark.skipif(bool(KERNELS_MISSING), reason=str(KERNELS_MISSING))

LAYERS = {"simple_rnn": keras_rnn_lab.SimpleRNN, "lstm": keras_rnn_lab.LSTM, "gru": keras_rnn_lab.GRU}
OPTIONS = {
    "plain": {},
    "sequences_and_state": {"return_sequences": True, "return_state": True},
    "go_backwards_masked": {"go_backwards": True, "return_sequences": True, "mask": True},
    "dropouts": {"dropout": 0.2, "recurrent_dropout": 0.3, "seed": 3, "return_sequences": True},
    "weight_drop_masked": {"recurrent_kernel_dropout": 0.4, "seed": 5, "mask": True, "return_state": True},
    "initial_state_relu": {"activation": "relu", "initial_state": True, "return_sequences": True},
    "no_bias_lecture": {"use_bias": False, "return_state": True},
}


def _kernel_ops(graph_def):
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return sorted({n.op for n in nodes if n.op.startswith("KerasRnnLab")})


def _run(layer, x, mask, initial_state):
    with tf.GradientTape() as tape:
        tape.watch(x)
        if initial_state is not None:
            tape.watch(initial_state)
        outputs = layer(x, mask=mask, initial_state=initial_state, training=True)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        # Weights differ per output element, so every element's gradient counts.
        loss = sum(tf.reduce_sum(o * tf.sin(tf.reshape(tf.range(tf.size(o), dtype=o.dtype), o.shape))) for o in outputs)
    sources = [x] + (initial_state or []) + layer.trainable_weights
    return outputs, tape.gradient(loss, sources)


# (batch, steps, features, units), and whether the op projects the input itself.
SHAPES = {
    # The matmul split across threads, and every edge of packed_gemm.h's tiling:
    # six-row blocks and a remainder of five, 150 units a part (panels of 16
    # columns and a partial one), depth over 256 (forward [x_t, h] is 9 + 300
    # deep, its first slice crossing from x to h; BPTT's 4 x 300).
    "projected_in_op": ((23, 13, 9, 300), True),
    # An input wider than a state under 128 units: projected before the op.
    "projected_before": ((7, 5, 40, 20), False),
}


@needs_kernels
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("cell", LAYERS)
def test_compiled_kernel_equals_the_tensorflow_loop(cell, option, shape):
    """Outputs to 1e-5 and gradients to 1e-4 (the fast path's tolerances)."""
    settings = dict(OPTIONS[option])
    use_mask, use_state = settings.pop("mask", False), settings.pop("initial_state", False)
    if option == "no_bias_lecture" and cell == "gru":
        settings["update_convention"] = "lecture"
    rng = np.random.default_rng(1)
    (batch, steps, features, units), in_op = SHAPES[shape]
    assert recurrences.projects_in_op(features, units) == in_op
    x = tf.constant(rng.normal(size=(batch, steps, features)).astype("float32"))
    mask = None
    if use_mask:
        keep = rng.random((batch, steps)) > 0.3
        keep[:, 0] = True
        mask = tf.constant(keep)
    compiled_layer, plain_layer = LAYERS[cell](units, **settings), LAYERS[cell](units, **settings)
    compiled_layer.build(x.shape)
    plain_layer.build(x.shape)
    # Non-zero biases (Keras starts them at zero, but for the LSTM's forget gate),
    # so every bias's place in the loop is checked (GRU's holds the input's and
    # the recurrent one: (2, 3 * units)).
    weights = [
        v.numpy() + rng.normal(scale=0.1, size=v.shape).astype("float32") * ("bias" in v.path)
        for v in compiled_layer.weights
    ]
    compiled_layer.set_weights(weights)
    plain_layer.set_weights(weights)
    n_states = 2 if cell == "lstm" else 1
    initial_state = [tf.constant(rng.normal(size=(batch, units)).astype("float32")) for _ in range(n_states)]
    initial_state = initial_state if use_state else None

    got, got_grads = _run(compiled_layer, x, mask, initial_state)
    with compiled.plain_tensorflow_ops():
        want, want_grads = _run(plain_layer, x, mask, initial_state)
    assert "the compiled kernels" in compiled_layer.last_loop.reason, compiled_layer.last_loop
    assert "TensorFlow ops" in plain_layer.last_loop.reason, plain_layer.last_loop
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    for i, (a, b) in enumerate(zip(got_grads, want_grads)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=f"gradient {i}")


@needs_kernels
@pytest.mark.parametrize("case", [p for p in GRID if p.id in ("mask_holes", "go_backwards", "initial_state")])
@pytest.mark.parametrize("kind", ref.KINDS)
def test_the_fast_layer_grid_runs_on_the_compiled_kernels(kind, case):
    made = []

    def recording(*args, **kwargs):
        made.append(fast_layer(*args, **kwargs))
        return made[-1]

    ref.check_case(kind, in_training(case), make_ours=recording)
    covered = getattr(made[0].cell, "reset_after", True)  # the kernel's GRU is reset_after=True
    expected = "the compiled kernels" if covered else "computes reset_after=True"
    assert expected in made[0].last_loop.reason, made[0].last_loop


@needs_kernels
def test_compiled_kernel_traces_with_unknown_batch_and_time():
    layer = keras_rnn_lab.LSTM(8, return_sequences=True)
    fn = tf.function(lambda x: layer(x, training=True), input_signature=[tf.TensorSpec([None, None, 3])])
    for shape in [(2, 5, 3), (4, 1, 3)]:
        x = tf.random.normal(shape)
        np.testing.assert_allclose(fn(x), layer(x, training=False), atol=1e-5)
    assert "the compiled kernels" in layer.last_loop.reason


@pytest.mark.parametrize(
    "layer, dtype, reason",
    [
        (lambda: keras_rnn_lab.GRU(4, reset_after=False), "float32", "reset_after=True"),
        (lambda: keras_rnn_lab.LSTM(4, dtype="float64"), "float64", "float32"),
    ],
    ids=["gru_reset_before", "float64"],
)
def test_configurations_the_kernel_does_not_cover_run_the_tensorflow_loop(layer, dtype, reason):
    layer = layer()
    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(dtype)
    layer(x, training=True)
    assert "TensorFlow ops" in layer.last_loop.reason and reason in layer.last_loop.reason, layer.last_loop


@needs_kernels
def test_xla_compiled_fit_runs_the_tensorflow_loop():
    model = keras.Sequential([keras.Input((6, 2)), keras_rnn_lab.GRU(5), keras.layers.Dense(1)])
    model.compile("adam", "mse", jit_compile=True)
    history = model.fit(np.ones((8, 6, 2), "float32"), np.ones((8, 1), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "XLA" in model.layers[0].last_loop.reason, model.layers[0].last_loop


@needs_kernels
def test_exported_graphs_hold_no_custom_op(tmp_path):
    """Keras's own export and tf.saved_model.save (not only ours) trace without the kernels."""
    model = keras.Sequential([keras.Input((4, 3)), keras_rnn_lab.LSTM(6), keras.layers.Dense(2)])
    x = np.ones((2, 4, 3), "float32")
    expected = model.predict(x, verbose=0)
    assert "the compiled kernels" in model.layers[0].last_loop.reason  # predict used them
    model.export(str(tmp_path / "keras_export"), verbose=False)
    tf.saved_model.save(model, str(tmp_path / "tf_save"))
    from keras_rnn_lab.serving import export

    endpoint = export.Endpoint(fn=lambda v: {"y": model(v)}, input_signature=[tf.TensorSpec([None, 4, 3], name="x")])
    export.write_saved_model(model, {"serve": endpoint}, str(tmp_path / "ours"))
    from tensorflow.core.protobuf import saved_model_pb2

    for folder in ("keras_export", "tf_save", "ours"):
        saved = saved_model_pb2.SavedModel.FromString((tmp_path / folder / "saved_model.pb").read_bytes())
        assert not _kernel_ops(saved.meta_graphs[0].graph_def), folder
    # And a process that never loads the kernels serves it.
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(tmp_path / "keras_export")], capture_output=True, text=True, timeout=300
    )
    assert served.returncode == 0, served.stderr[-2000:]
    np.testing.assert_allclose(np.array(eval(served.stdout.strip().splitlines()[-1])), expected, atol=1e-5)


SERVE = textwrap.dedent(
    """
    import sys
    import numpy as np, tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    print(served.serve(tf.ones((2, 4, 3))).numpy().tolist())
    """
)

FALLBACK = textwrap.dedent(
    """
    import warnings
    import numpy as np, keras, keras_rnn_lab
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = keras_rnn_lab.LSTM(3, return_sequences=True)
        x = np.random.default_rng(0).normal(size=(2, 4, 5)).astype("float32")
        out = layer(x, training=True)
        reference = keras.layers.LSTM(3, return_sequences=True)
        reference.build(x.shape)
        reference.set_weights(layer.get_weights())
        np.testing.assert_allclose(out, reference(x), atol=1e-5)
    print("REASON", layer.last_loop.reason)
    print("WARNINGS", len([w for w in caught if "keras_rnn_lab" in str(w.message)]))
    """
)


@pytest.mark.parametrize(
    "environment, reason, warnings",
    [
        ({build.SWITCH: "0"}, "KERAS_RNN_LAB_KERNELS=0", 0),
        ({"CXX": "/bin/false"}, "false failed", 1),
    ],
    ids=["switched_off", "compiler_fails"],
)
def test_without_kernels_the_tensorflow_loop_runs_and_says_why(environment, reason, warnings, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != build.SWITCH}  # CI's kernels-off step sets it
    env.update({"KERAS_RNN_LAB_CACHE": str(tmp_path), **environment})
    done = subprocess.run([sys.executable, "-c", FALLBACK], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("REASON", "WARNINGS")))
    assert "TensorFlow ops" in lines["REASON"] and reason in lines["REASON"], lines
    assert int(lines["WARNINGS"]) == warnings, done.stderr[-2000:]
    assert not list(tmp_path.glob("*.so"))  # nothing half-built left behind


@pytest.mark.slow
@needs_kernels
@pytest.mark.parametrize(
    "flags, branch",
    [("-mno-avx512f", "avx2"), ("-mno-avx2 -mno-fma", "eigen")],
    ids=["avx2_without_avx512", "eigen_without_avx2"],
)
def test_kernels_built_for_narrower_cpus_equal_the_tensorflow_loop(tmp_path, flags, branch):
    """packed_gemm.h's other branches: on a CPU without AVX-512 the AVX2
    micro-kernel, without AVX2/FMA Eigen's product.  Built here with those
    instruction sets switched off (a compiler wrapper), the equality test above
    must pass on that library too."""
    wrapper = tmp_path / "cxx_narrower"
    wrapper.write_text(f'#!/bin/sh\nexec {build._compiler()} "$@" {flags}\n')
    wrapper.chmod(0o755)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != build.SWITCH}
    env.update({"CXX": str(wrapper), "KERAS_RNN_LAB_CACHE": str(cache)})
    test = f"{__file__}::test_compiled_kernel_equals_the_tensorflow_loop"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", test]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]
    (library,) = cache.glob("*.so")
    if shutil.which("objdump"):  # the branch asked for was the one compiled in
        disassembly = subprocess.run(["objdump", "-d", str(library)], capture_output=True, text=True).stdout
        assert "zmm" not in disassembly
        if branch == "avx2":
            assert "vfmadd" in disassembly and "ymm" in disassembly
        else:
            assert "vfmadd" not in disassembly
