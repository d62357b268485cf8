"""keras_rnn_lab.serving.export: SavedModels that serve without this package, written safely."""

import os
import re
import signal
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import output_paths
from keras_rnn_lab.errors import UsageError
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


def test_an_export_gets_the_mode_of_the_umask(tmp_path):
    # A server running as another user must be able to read the export: not mkdtemp's 0o700.
    model = sequence_model()
    previous = os.umask(0o022)
    try:
        export.export_saved_model(model, {"serve": export.array_endpoint(model)}, tmp_path / "out")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "1").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / export.KERAS_FILE).stat().st_mode) == 0o644


def _fail_in_write_out(error):
    def write_out(self, filepath, **kwargs):
        os.makedirs(os.path.join(filepath, "variables"))  # half written
        raise error

    # ExportArchive() returns an instance of the backend's subclass: patch that.
    return type(keras.export.ExportArchive()), "write_out", write_out


def _fail_in_model_save(self, filepath, *args, **kwargs):
    with open(filepath, "wb") as half:
        half.write(b"half")
    raise OSError("disk full")


def _fail_in_replace(out):
    real_rename = os.rename

    def rename(src, dst):
        if os.fspath(dst) == str(out) and ".out.export-" in os.fspath(src):
            raise OSError("rename refused")  # after OUT was moved aside
        return real_rename(src, dst)

    return os, "rename", rename


@pytest.mark.parametrize(
    "failure, raised",
    [
        (lambda out: _fail_in_write_out(OSError("disk full")), OSError),
        (lambda out: _fail_in_write_out(KeyboardInterrupt()), KeyboardInterrupt),
        (lambda out: (keras.Model, "save", _fail_in_model_save), OSError),
        (_fail_in_replace, OSError),
    ],
    ids=["write_out", "interrupted_write_out", "model_save", "replace"],
)
def test_a_failed_export_leaves_nothing_behind_and_the_previous_export_intact(tmp_path, monkeypatch, failure, raised):
    model = sequence_model()
    out = tmp_path / "out"
    export.export_saved_model(model, {"serve": export.array_endpoint(model)}, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(*failure(out))
    other = sequence_model(cells=("gru",))
    with pytest.raises(raised):
        export.export_saved_model(other, {"serve": export.array_endpoint(other)}, out, overwrite=True)
    monkeypatch.undo()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no .out.export-* or .out.old-*


def test_ctrl_c_between_the_renames_is_held_back_until_the_new_export_is_in_place(tmp_path, monkeypatch):
    model = sequence_model()
    out = tmp_path / "out"
    export.export_saved_model(model, {"serve": export.array_endpoint(model)}, out)
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if os.fspath(src) == str(out):  # OUT is aside now: an interrupt here would leave no OUT
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(os, "rename", rename)
    other = sequence_model(cells=("gru",))
    with pytest.raises(KeyboardInterrupt):
        export.export_saved_model(other, {"serve": export.array_endpoint(other)}, out, overwrite=True, keras_copy=False)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["1"]  # the new export (no model.keras), complete
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_leftovers_of_a_killed_export_are_named_not_removed(tmp_path):
    # SIGKILL runs no cleanup; the next export says what it finds, and removes nothing it did not make.
    for name in (".out.export-123-deadbeef", ".out.old-123-cafef00d"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"left")
    model = sequence_model()
    with pytest.warns(RuntimeWarning, match=r"\.out\.export-123-deadbeef, \.out\.old-123-cafef00d"):
        export.export_saved_model(model, {"serve": export.array_endpoint(model)}, tmp_path / "out", keras_copy=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.export-123-deadbeef", ".out.old-123-cafef00d", "out"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_parent_is_a_usage_error_before_any_work(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    denied = re.escape(f"cannot write into '{parent}' (Permission denied); expected a directory you can write to")
    try:
        for out in (parent / "out", parent / "a" / "b" / "out"):
            with pytest.raises(UsageError, match=f"^argument --out: {denied}$"):
                export.check_target(str(out), overwrite=False)
            with pytest.raises(UsageError, match=f"^argument `out_dir`: {denied}$"):
                export.export_saved_model(sequence_model(), {"serve": None}, out)
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


def test_an_unwritable_parent_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    # What the test above checks, for root too: the permission answer is faked, the rest is real.
    monkeypatch.setattr(output_paths, "_may_write", lambda path, mode: path != str(tmp_path))
    model = sequence_model()
    denied = re.escape(f"argument `out_dir`: cannot write into '{tmp_path}' (Permission denied)")
    with pytest.raises(UsageError, match=denied):
        export.export_saved_model(model, {"serve": export.array_endpoint(model)}, tmp_path / "new" / "out")
    assert list(tmp_path.iterdir()) == []


def test_out_must_not_be_a_file(tmp_path):
    (tmp_path / "out").write_text("not a directory")
    with pytest.raises(UsageError, match="`out_dir` must be a directory; .* is a file"):
        export.check_target(tmp_path / "out", overwrite=True)


def test_check_writable_parent_allows_missing_directories_under_a_writable_one(tmp_path):
    target = tmp_path / "a" / "b" / "model.keras"
    assert output_paths.check_writable_parent(target, "--out") == str(target)
    assert output_paths.check_writable_parent(tmp_path / "a" / "b", "--out", kind="directory") == str(target.parent)
    assert list(tmp_path.iterdir()) == []  # a check writes nothing
    (tmp_path / "model.keras").write_bytes(b"old")
    output_paths.check_writable_parent(tmp_path / "model.keras", "--out")  # replacing a file is fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_check_writable_parent_refuses_missing_directories_under_a_read_only_one(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(UsageError, match=re.escape(f"argument --out: cannot write into '{parent}' (Permission")):
            output_paths.check_writable_parent(parent / "a" / "b" / "model.keras", "--out")
    finally:
        parent.chmod(0o755)


def test_check_writable_parent_names_what_is_in_the_way(tmp_path):
    with pytest.raises(UsageError, match=r"^argument --out: '.*' is a directory; expected the path of a file$"):
        output_paths.check_writable_parent(tmp_path, "--out", kind="file")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"'.*file' exists and is not a directory; expected a directory$"):
        output_paths.check_writable_parent(tmp_path / "file", "--out", kind="directory")
    with pytest.raises(UsageError, match=re.escape(f"model.keras': '{tmp_path / 'file'}' is not a directory")):
        output_paths.check_writable_parent(tmp_path / "file" / "sub" / "model.keras", "--out")
    with pytest.raises(ValueError, match="`kind` must be one of"):
        output_paths.check_writable_parent(tmp_path, "--out", kind="dir")
    with pytest.raises(TypeError, match="`path` must be a path"):
        output_paths.check_writable_parent(None, "--out")
