"""`export --format tflite|onnx`: every recipe's numeric endpoints, run by the
real runtimes (ai_edge_litert's interpreter, onnxruntime) in fresh processes
that import no TensorFlow, give the Keras model's outputs.

Each recipe's tiny-preset model is built (its training is tested elsewhere),
saved, exported through `python -m recipes.NAME export --format F`, and run on
real inputs with padding (parity's bit strings of different lengths,
sentiment's reviews, translation's sentences).  The float outputs match to
1e-4 (float32 kernels of two libraries; measured differences are ~1e-7), the
ids exactly.  Parity and sentiment run by default; the other recipes (each a
few seconds of conversion) with the slow tests.
"""

import json
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab.serving import numeric
from recipes import captioning, char_lm, forecast, parity, sentiment, translation
from tests import test_recipe_exports as cases
from tests.serving import RuntimeJob, run_in_runtime

# What each format's tests need beside TensorFlow (the test extra installs them all).
NEEDED = {"tflite": ["ai_edge_litert"], "onnx": ["tf2onnx", "onnxruntime"]}


def needs(export_format):
    """Skip, saying which module is missing, where this format's runtime or converter is absent."""
    for module in NEEDED[export_format]:
        pytest.importorskip(module, reason=f"{module} is not installed (the test extra installs it)")


TOLERANCE = 1e-4
FAST = ("parity", "sentiment")
FORMATS = ("tflite", "onnx")


def exported(tmp_path, name, export_format):
    """(model, signature, inputs, OUT) of recipe `name` exported in `export_format`."""
    needs(export_format)
    recipe, case = cases.CASES[name]
    keras.utils.set_random_seed(0)
    model, signature, inputs = case()
    model.save(tmp_path / f"{name}.keras")
    out = tmp_path / name
    recipe.main(["export", "--model", str(tmp_path / f"{name}.keras"), "--out", str(out), "--format", export_format])
    return model, signature, inputs, out


def file_of(out, export_format, endpoint):
    return str(out / ("model.tflite" if export_format == "tflite" else f"{endpoint}.onnx"))


def described_inputs(out, endpoint, inputs):
    """`inputs` cast to the dtypes endpoints.json declares (what a client does)."""
    declared = json.loads((out / numeric.DESCRIPTION_FILE).read_text())[endpoint]["inputs"]
    return {name: np.asarray(inputs[name]).astype(spec["dtype"]) for name, spec in declared.items()}


def run(export_format, out, endpoint, inputs, **stepping):
    inputs = described_inputs(out, endpoint, inputs)
    job = RuntimeJob(file_of(out, export_format, endpoint), endpoint, inputs, **stepping)
    return run_in_runtime(export_format, [job])[0]


def expected_classes(model, x):
    logits = model.predict(x.astype(object) if x.dtype.kind == "U" else x, verbose=0)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits)), np.argmax(logits, axis=-1)


def params(names):
    return [
        pytest.param(name, export_format, marks=() if name in FAST else pytest.mark.slow)
        for name in names
        for export_format in FORMATS
    ]


@pytest.mark.parametrize("name, export_format", params(["parity", "tagging", "video_frames", "forecast"]))
def test_array_endpoints_give_the_keras_models_outputs(tmp_path, name, export_format):
    model, signature, inputs, out = exported(tmp_path, name, export_format)
    got = run(export_format, out, signature, inputs)
    x = next(iter(inputs.values()))
    if name == "forecast":
        expected = forecast.to_units(model, model.predict(x, verbose=0))
        np.testing.assert_allclose(got["next_value"], expected, rtol=1e-6, atol=TOLERANCE)
        return
    probabilities, label_id = expected_classes(model, x)
    np.testing.assert_allclose(got["probabilities"], probabilities, atol=TOLERANCE)
    np.testing.assert_array_equal(got["label_id"], label_id)
    assert "label" not in got  # names are in labels.json, not in the file
    labels = json.loads((out / "labels.json").read_text())
    assert len(labels) == probabilities.shape[-1]
    if name == "parity":
        assert (x == 0).any(), "the parity case must hold padded strings"


def client_ids(out, texts):
    """sentiment's client tokenizer, as the README writes it: tokenizer.json and vocabulary.json only."""
    settings = json.loads((out / numeric.TOKENIZER_FILE).read_text())
    index = {word: i for i, word in enumerate(json.loads((out / numeric.VOCABULARY_FILE).read_text()))}
    rows = []
    for text in texts:
        words = re.sub(settings["strip_pattern"], "", text.lower()).split()
        ids = [index.get(word, settings["oov_id"]) for word in words][: settings["output_sequence_length"]]
        rows.append(ids + [settings["pad_id"]] * (settings["output_sequence_length"] - len(ids)))
    return np.array(rows, np.int64)


@pytest.mark.parametrize("export_format", FORMATS)
def test_sentiment_ids_from_the_vocabulary_file_classify_as_the_text_model(tmp_path, export_format):
    model, _, inputs, out = exported(tmp_path, "sentiment", export_format)
    texts = list(inputs["text"])
    ids = client_ids(out, texts)
    np.testing.assert_array_equal(ids, keras.ops.convert_to_numpy(model.get_layer("vectorizer")(np.array(texts))))
    assert (ids == 0).any() and (ids == 1).any()  # padding and an unknown word both reach the file
    got = run(export_format, out, "classify_ids", {"ids": ids})
    probabilities, label_id = expected_classes(model, inputs["text"])
    np.testing.assert_allclose(got["probabilities"], probabilities, atol=TOLERANCE)
    np.testing.assert_array_equal(got["label_id"], label_id)
    assert json.loads((out / "labels.json").read_text()) == list(sentiment.CLASS_NAMES)


def source_ids(out, texts):
    """translation's client tokenizer: tokenizer.json and source_vocabulary.json only."""
    settings = json.loads((out / numeric.TOKENIZER_FILE).read_text())
    index = {word: i for i, word in enumerate(json.loads((out / "source_vocabulary.json").read_text()))}
    rows = [[index.get(w, settings["oov_id"]) for w in re.findall(settings["token_pattern"], t.lower())] for t in texts]
    longest = max(map(len, rows))
    return np.array([row + [settings["pad_id"]] * (longest - len(row)) for row in rows], np.int64)


@pytest.mark.slow
@pytest.mark.parametrize("export_format", FORMATS)
def test_translation_ids_are_the_translators_greedy_and_beam(tmp_path, export_format):
    model, _, inputs, out = exported(tmp_path, "translation", export_format)
    texts = list(inputs["text"])
    ids = source_ids(out, texts)
    translator = translation.Translator(model)
    target = json.loads((out / "target_vocabulary.json").read_text())
    for endpoint, width in (("translate_ids", 1), ("translate_beam_ids", 4)):
        got = run(export_format, out, endpoint, {"source_ids": ids})
        tokens, lengths = translator.translate_ids(
            [translation.tokenize(t) for t in texts], width, max_length=translation.SERVED_MAX_LENGTH
        )
        np.testing.assert_array_equal(got["tokens"], tokens.numpy())
        np.testing.assert_array_equal(got["lengths"], lengths.numpy())
        words = translator.translate_batch(
            [translation.tokenize(t) for t in texts], width, max_length=translation.SERVED_MAX_LENGTH
        )
        end = json.loads((out / numeric.TOKENIZER_FILE).read_text())["end_id"]
        decoded = [[target[i] for i in row[:n] if i != end] for row, n in zip(got["tokens"], got["lengths"])]
        assert decoded == words


@pytest.mark.slow
@pytest.mark.parametrize("export_format", FORMATS)
def test_caption_ids_are_the_captioners_greedy_and_beam(tmp_path, export_format):
    model, _, inputs, out = exported(tmp_path, "captioning", export_format)
    for endpoint, width in (("caption_ids", 1), ("caption_beam_ids", 3)):
        got = run(export_format, out, endpoint, inputs)
        tokens, lengths = captioning.Captioner(model)(inputs["image"], captioning.SERVED_MAX_WORDS, beam_width=width)
        np.testing.assert_array_equal(got["tokens"], tokens)
        np.testing.assert_array_equal(got["lengths"], lengths)


@pytest.mark.slow
@pytest.mark.parametrize("export_format", FORMATS)
def test_char_lm_steps_give_the_models_logits_at_every_character(tmp_path, export_format):
    model, _, _, out = exported(tmp_path, "char_lm", export_format)
    primes = ["From fairest", "Shall I comp"]  # the same length: one batch of two
    vocabulary = json.loads((out / numeric.VOCABULARY_FILE).read_text())
    index = {character: i for i, character in enumerate(vocabulary)}
    tokens = np.array([[index.get(c, 0) for c in prime] for prime in primes], np.int64)
    declared = json.loads((out / numeric.DESCRIPTION_FILE).read_text())["step"]["inputs"]
    states = {name: np.zeros((2, spec["shape"][1]), np.float32) for name, spec in declared.items() if name != "token"}
    assert sorted(states) == ["state_c", "state_h"]  # the tiny preset's cell is an LSTM
    feedback = {f"new_{name}": name for name in states}
    got = run(export_format, out, "step", {"token": tokens, **states}, stepped=("token",), feedback=feedback)
    expected = keras.ops.convert_to_numpy(model(tf.constant([list(prime) for prime in primes]), training=False))
    np.testing.assert_allclose(got["logits"], expected, atol=TOLERANCE)


@pytest.mark.parametrize("export_format", FORMATS)
def test_an_endpoint_that_cannot_convert_names_the_recipe_endpoint_and_ops_and_writes_nothing(tmp_path, export_format):
    # char_lm's SavedModel endpoint samples over strings (the reason its files
    # serve "step" instead): forced through a converter, it must fail cleanly.
    from keras_rnn_lab.serving import conversion, onnx_export, tflite_export

    needs(export_format)
    model, _, _ = cases.char_lm_case()
    endpoints = {"generate": char_lm.serving_endpoints(model)["generate"]}
    write = tflite_export.export_tflite if export_format == "tflite" else onnx_export.export_onnx
    with pytest.raises(conversion.ConversionError) as raised:
        write(model, endpoints, tmp_path / "out", recipe="char_lm")
    message = str(raised.value)
    assert message.startswith("cannot export char_lm's endpoint 'generate' to "), message
    assert "nothing was written" in message and len(message.splitlines()) == 1, message
    assert re.search(r"tf\.[A-Z]\w+", message), message  # the TensorFlow op, by name
    assert not list(tmp_path.iterdir())  # neither OUT nor a staging directory


def test_onnx_without_tf2onnx_is_a_usage_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    model, _, _ = cases.parity_case()
    model.save(tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if the onnx extra were not installed
    with pytest.raises(SystemExit) as exit_info:
        parity.main(
            ["export", "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "out"), "--format", "onnx"]
        )
    assert exit_info.value.code == 2
    assert 'pip install "keras_rnn_lab[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_fused_lstm_file_has_the_fused_op_and_gives_the_models_outputs_call_after_call(tmp_path):
    from keras_rnn_lab.serving.tflite_export import op_names

    needs("tflite")
    model, _, inputs = cases.parity_case()  # an LSTM over padded bit strings
    model.save(tmp_path / "m.keras")
    batch = len(inputs["tokens"])
    out = tmp_path / "out"
    parity.main(["export", "--model", str(tmp_path / "m.keras"), "--out", str(out), "--format", "tflite"])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" not in op_names((out / "model.tflite").read_bytes())  # the loop by default
    parity.main(
        ["export", "--model", str(tmp_path / "m.keras"), "--out", str(out), "--format", "tflite", "--overwrite"]
        + ["--fused-batch", str(batch)]
    )
    ops = op_names((out / "model.tflite").read_bytes())
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" not in ops, ops
    declared = json.loads((out / numeric.DESCRIPTION_FILE).read_text())["classify"]["inputs"]["tokens"]
    assert declared["shape"][0] == batch
    # Three calls in one interpreter: the op writes its final state into its
    # initial-state operands, which must not carry into the next call.
    got = run("tflite", out, "classify", inputs, calls=3)
    probabilities, label_id = expected_classes(model, inputs["tokens"])
    np.testing.assert_allclose(got["probabilities"], probabilities, atol=TOLERANCE)
    np.testing.assert_array_equal(got["label_id"], label_id)


def test_fused_batch_is_for_tflite_only(tmp_path, capsys):
    model, _, _ = cases.parity_case()
    model.save(tmp_path / "m.keras")
    with pytest.raises(SystemExit) as exit_info:
        parity.main(
            ["export", "--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "o"), "--fused-batch", "4"]
        )
    assert exit_info.value.code == 2 and "only for --format tflite" in capsys.readouterr().err


@pytest.mark.slow
def test_the_tflite_latency_benchmark_times_two_files_computing_the_same_model(capsys):
    from keras_rnn_lab.benchmark import tflite_latency

    needs("tflite")
    table = tflite_latency.main(["--units", "8", "--steps", "5", "--batches", "2", "--threads", "1", "--invokes", "5"])
    rows = [line for line in table.splitlines() if line.startswith("| 2 | 1 |")]
    assert len(rows) == 1 and rows[0].count("x [") == 1, table


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_loops_traced_for_builtin_ops_compute_the_same_sequences_without_tensor_lists(cell):
    from keras_rnn_lab.layers.bptt import loop
    from keras_rnn_lab.training import recurrent_layer

    tokens = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(6, 4, mask_zero=True)(tokens)
    hidden = recurrent_layer(cell, 5, return_sequences=True)(hidden)  # per-step outputs recorded in the loop
    model = keras.Model(tokens, keras.layers.Dense(2)(hidden))
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 1, 2, 3]], np.int32)  # padded, so the mask is used
    spec = [tf.TensorSpec((None, None), tf.int32)]
    with loop.builtin_ops_only():
        traced = tf.function(lambda t: model(t, training=False), input_signature=spec).get_concrete_function()
    ops = {op.type for function in traced.graph._functions.values() for op in function.graph.get_operations()}
    ops |= {op.type for op in traced.graph.get_operations()}
    assert "TensorScatterUpdate" in ops and not {op for op in ops if op.startswith("TensorList")}, sorted(ops)
    np.testing.assert_allclose(traced(tf.constant(x)).numpy(), model(x, training=False).numpy(), atol=1e-6)
