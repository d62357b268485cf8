"""keras_rnn_lab.serving.export: SavedModels that serve without this package, written safely."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab.serving import export
from keras_rnn_lab.training import recurrent_layer
from tests.serving import serve_in_fresh_process


def sequence_model(stateful=False, dropout=0.0, recurrent_dropout=0.0, cells=("lstm",), batch=None):
    """features (batch, 5, 3) -> one recurrent layer per cell, stacked -> Dense(2)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 3), batch_size=batch, name="features")
    hidden = inputs
    for i, cell in enumerate(cells):
        last = i == len(cells) - 1
        hidden = recurrent_layer(
            cell,
            4,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            stateful=stateful,
            seed=i,
            return_sequences=not last,
        )(hidden)
    return keras.Model(inputs, keras.layers.Dense(2)(hidden))


def test_dropout_models_serve_their_inference_outputs(tmp_path):
    # Every cell, with dropout and recurrent dropout: one export, one serving process.
    model = sequence_model(dropout=0.3, recurrent_dropout=0.3, cells=("lstm", "gru", "simple_rnn"))
    x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype("float32")
    path = export.export_saved_model(model, {"serve": export.array_endpoint(model)}, tmp_path / "out")
    [served] = serve_in_fresh_process(path, "serve", {"features": x})
    # Inference: no dropout, so the served outputs equal the model's own.
    np.testing.assert_allclose(served["predictions"], model.predict(x, verbose=0), atol=1e-5)
    assert keras.saving.load_model(tmp_path / "out" / export.KERAS_FILE).count_params() == model.count_params()


def test_a_stateful_model_carries_its_state_between_served_calls(tmp_path):
    model = sequence_model(stateful=True, batch=2)
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype("float32")
    path = export.export_saved_model(model, {"serve": export.array_endpoint(model)}, tmp_path / "out", keras_copy=False)
    first, second = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert not np.allclose(first, second)  # the second call starts from the first call's state
    served = serve_in_fresh_process(path, "serve", {"features": x}, calls=2)
    np.testing.assert_allclose(served[0]["predictions"], first, atol=1e-5)
    np.testing.assert_allclose(served[1]["predictions"], second, atol=1e-5)


def test_saved_model_cli_lists_the_signatures(tmp_path):
    model = sequence_model()
    endpoints = {
        "predict": export.array_endpoint(model),
        "labels": export.array_endpoint(model, postprocess=lambda logits: {"label": keras.ops.argmax(logits, axis=-1)}),
    }
    path = export.export_saved_model(model, endpoints, tmp_path / "out")
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, check=True).stdout
    for name in ("predict", "labels", "serving_default"):
        assert f"signature_def['{name}']" in shown
    assert "outputs['label']" in shown and "inputs['features']" in shown


def test_a_non_empty_directory_is_kept_unless_overwrite(tmp_path):
    model = sequence_model()
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty; pass overwrite=True"):
        export.export_saved_model(model, {"serve": export.array_endpoint(model)}, out)
    assert (out / "notes.txt").read_text() == "mine"
    export.export_saved_model(model, {"serve": export.array_endpoint(model)}, out, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / "1" / "saved_model.pb").exists()


def test_an_interrupted_export_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    model = sequence_model()
    out = tmp_path / "out"
    export.export_saved_model(model, {"serve": export.array_endpoint(model)}, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    pb = (out / "1" / "saved_model.pb").read_bytes()

    def fail_half_way(obj, export_dir, **kwargs):
        os.makedirs(export_dir)
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as half:
            half.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail_half_way)
    other = sequence_model(cells=("gru",))
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(other, {"serve": export.array_endpoint(other)}, out, overwrite=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "1" / "saved_model.pb").read_bytes() == pb
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left behind


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="`out_dir` must be a path"):
        export.export_saved_model(sequence_model(), {}, 3)
    with pytest.raises(ValueError, match="at least one serving function"):
        export.export_saved_model(sequence_model(), {}, "/tmp/never-written-export")
