"""training.summaries: text and images beside a run directory's TensorBoard
curves, read back from the event files; and the recipes that write them
(char_lm's samples, captioning's grid, vanishing_gradients' heat maps)."""

import glob
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab.training import runs, summaries
from recipes import captioning, char_lm, vanishing_gradients


def events(directory):
    """{tag: [(step, plugin name, value as an ndarray)]} of the event files directly in `directory`."""
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                entry = (event.step, value.metadata.plugin_data.plugin_name, tf.make_ndarray(value.tensor))
                found.setdefault(value.tag, []).append(entry)
    return found


def image(entry):
    """The pixels of one image summary: its tensor is [width, height, PNG...]."""
    _, plugin, value = entry
    assert plugin == "images" and len(value) == 3
    pixels = tf.io.decode_png(value[2]).numpy()
    assert (int(value[0]), int(value[1])) == (pixels.shape[1], pixels.shape[0])
    return pixels


def png_shape(path):
    return tuple(tf.io.decode_png(tf.io.read_file(str(path))).shape)


def test_text_and_images_are_written_into_the_runs_logs_folder(tmp_path, rng):
    picture = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = tmp_path / "picture.png"
    tf.io.write_file(str(path), tf.io.encode_png(picture))
    with runs.active(runs.RunDirectory(tmp_path / "run")):
        directory = summaries.log_text("model_a", 2, "note", "two\nlines")
        assert summaries.log_png("model_a", 3, "picture", path) == directory
        summaries.log_png("model_a", 4, "same, as bytes", path.read_bytes())
        summaries.log_png("model_a", 4, "grey", np.linspace(0, 1, 12, dtype="float32").reshape(3, 4))
    assert directory == os.path.join(tmp_path / "run", "model_a", "logs")
    found = events(directory)
    assert [(step, plugin, text.item().decode()) for step, plugin, text in found["note"]] == [(2, "text", "two\nlines")]
    assert found["picture"][0][0] == 3
    np.testing.assert_array_equal(image(found["picture"][0]), picture)  # PNG is lossless
    np.testing.assert_array_equal(image(found["same, as bytes"][0]), picture)
    assert image(found["grey"][0]).shape == (3, 4, 1)


def test_without_a_run_directory_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert summaries.log_text("model_a", 0, "note", "text") is None
    assert summaries.log_png("model_a", 0, "picture", np.zeros((2, 2, 3), "uint8")) is None
    assert os.listdir(tmp_path) == []


def test_bad_arguments_are_named(tmp_path):
    with runs.active(runs.RunDirectory(tmp_path / "run")):
        with pytest.raises(ValueError, match="`step` must be an int >= 0"):
            summaries.log_text("model_a", -1, "note", "text")
        with pytest.raises(TypeError, match="`text` must be a string; received int"):
            summaries.log_text("model_a", 0, "note", 3)
        with pytest.raises(ValueError, match=r"received an array of shape \(2, 2, 2, 3\)"):
            summaries.log_png("model_a", 0, "picture", np.zeros((2, 2, 2, 3), "uint8"))


def test_char_lm_samples_are_logged_as_printed_beside_the_scalars(tmp_path, capsys):
    config = char_lm.RECIPE.config(
        "tiny", {"sample_every": 1, "max_characters": 800}, epochs=2, units=8, cell="simple_rnn"
    )
    with runs.active(runs.RunDirectory(tmp_path)):
        model, _ = char_lm.train(config)
    printed = re.findall(r"--- sample (.*?) ---\n(.*?)\n---\n", capsys.readouterr().out, re.DOTALL)
    assert [heading for heading, _ in printed] == [
        "before training (at first: random characters)",
        "after epoch 1",
        "after epoch 2",
    ]
    logs = tmp_path / model.name / "logs"
    logged = events(logs)["sample"]
    assert [(step, plugin) for step, plugin, _ in logged] == [(0, "text"), (1, "text"), (2, "text")]  # epochs trained
    assert [text.item().decode() for _, _, text in logged] == [text for _, text in printed]
    assert glob.glob(str(logs / "train" / "events.out.tfevents.*"))  # Keras's TensorBoard scalars, beside them


@pytest.mark.slow  # about 15 s: a captioning model trains for one epoch
def test_captioning_grid_is_logged_as_an_image(tmp_path):
    grid = tmp_path / "grid.png"
    sizes = dict(train_scenes=300, validation_scenes=30, test_scenes=12, held_out_scenes=12)
    config = captioning.RECIPE.config("tiny", {**sizes, "grid_path": str(grid)}, epochs=1)
    with runs.active(runs.RunDirectory(tmp_path / "run")):
        result = captioning.train(config)
    logged = events(tmp_path / "run" / result.model.name / "logs")["captions"]
    assert [step for step, _, _ in logged] == [0]
    assert image(logged[0]).shape == png_shape(grid)


def test_vanishing_gradients_heat_map_and_curves_are_logged_as_images(tmp_path):
    heatmap, curves = tmp_path / "heat.png", tmp_path / "curves.png"
    with runs.active(runs.RunDirectory(tmp_path / "run")):
        flags = ["--preset", "tiny", "--cells", "simple_rnn,lstm", "--forget-biases", "1"]
        vanishing_gradients.main([*flags, "--heatmap", str(heatmap), "--curves", str(curves)])
    logged = events(tmp_path / "run" / "vanishing_gradients" / "logs")
    assert image(logged["gradient_heat_map"][0]).shape == png_shape(heatmap)
    assert image(logged["gradient_norm_against_distance"][0]).shape == png_shape(curves)
    assert (tmp_path / "run" / "config.json").exists()  # kept: the run recorded something
