"""The video frames recipe and its data source (keras_rnn_lab.data.moving_digits):
the clips, the source-image splits, that the tiny preset learns, the command
and its errors."""

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import keras_rnn_lab
from keras_rnn_lab.data import moving_digits
from keras_rnn_lab.training import config_from_preset
from recipes import video_frames

# Motion names spelled out from (sign of row step, sign of column step); rows grow downwards.
DIRECTIONS = {
    (-1, -1): "up-left",
    (-1, 0): "up",
    (-1, 1): "up-right",
    (0, -1): "left",
    (0, 0): "still",
    (0, 1): "right",
    (1, -1): "down-left",
    (1, 0): "down",
    (1, 1): "down-right",
}


def tiny_config(**overrides):
    return config_from_preset(video_frames.Config, video_frames.PRESETS, "tiny", **overrides)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits, read here independently of the recipe's cache."""
    return load_digits()


@pytest.fixture(scope="module")
def tiny_data():
    return video_frames.load_data(tiny_config())


@pytest.fixture(scope="module")
def tiny_result():
    """One training run of the tiny preset, shared by the tests that inspect it."""
    return video_frames.train(tiny_config())


def bounce(start, velocity, frames, room):
    """Step-by-step reference for a point bouncing in [0, room]: (frames, 2)."""
    position, velocity, path = np.array(start), np.array(velocity), []
    for _ in range(frames):
        path.append(position.copy())
        position = position + velocity
        for axis in range(2):
            if position[axis] < 0:
                position[axis], velocity[axis] = -position[axis], -velocity[axis]
            elif position[axis] > room:
                position[axis], velocity[axis] = 2 * room - position[axis], -velocity[axis]
    return np.array(path)


# --- clips -------------------------------------------------------------------
def test_every_frame_is_exactly_its_digit_at_its_position(tiny_data, digits):
    config = tiny_config()
    size = config.canvas_size
    for name, clips in tiny_data.items():
        n = getattr(config, f"{name}_clips")
        assert clips.frames.shape == (n, config.frames, size, size, 1) and clips.frames.dtype == np.float32
        assert clips.labels.shape == clips.image_index.shape == (n, config.frames)
        assert 0.0 <= clips.frames.min() and clips.frames.max() <= 1.0
        assert clips.frames.max() == 1.0  # the digits' full ink (16/16) is there
        expected = np.zeros((n, config.frames, size, size), dtype="float32")
        for i in range(n):
            for t in range(config.frames):
                row, column = clips.positions[i, t]
                expected[i, t, row : row + 8, column : column + 8] = digits.images[clips.image_index[i, t]] / 16.0
        np.testing.assert_array_equal(clips.frames[..., 0], expected)
        np.testing.assert_array_equal(clips.labels, digits.target[clips.image_index])
        np.testing.assert_array_equal(clips.digits, clips.labels)
        assert set(np.unique(clips.labels)) == set(range(10))


def test_digits_move_in_straight_lines_and_bounce_off_the_edges(tiny_data):
    config = tiny_config()
    room = config.canvas_size - 8
    for clips in tiny_data.values():
        velocity = clips.velocity
        assert np.all(np.abs(velocity) <= config.max_speed) and np.all(np.any(velocity != 0, axis=1))
        for start, v, path in zip(clips.positions[:, 0], velocity, clips.positions):
            np.testing.assert_array_equal(path, bounce(start, v, config.frames, room))
    # Starts spread over the whole canvas, and some clips do hit an edge.
    positions = tiny_data["train"].positions
    assert set(np.unique(positions[:, 0])) == set(range(room + 1))
    steps = np.diff(positions, axis=1)
    assert np.any(np.sign(steps[:, 1:]) == -np.sign(steps[:, :-1]))


@pytest.mark.parametrize("digits_per_clip", [1, 2, 3])
def test_each_clip_switches_to_another_digit_at_random_frames(digits_per_clip, rng):
    pool = np.arange(1797)
    clips = moving_digits.make_clips(rng, pool, 300, canvas_size=12, frames=6, digits_per_clip=digits_per_clip)
    changes = clips.image_index[:, 1:] != clips.image_index[:, :-1]  # (n, frames - 1)
    assert np.all(changes.sum(axis=1) == digits_per_clip - 1)
    # The image changes exactly when the digit does: a switch always brings another class.
    np.testing.assert_array_equal(changes, clips.labels[:, 1:] != clips.labels[:, :-1])
    if digits_per_clip > 1:
        switch_frames = np.nonzero(changes)[1] + 1
        assert set(switch_frames) == set(range(1, 6))  # every possible frame gets used


def test_motion_target_labels_the_step_since_the_previous_frame(tiny_data):
    motion = video_frames.load_data(tiny_config(target="motion"))
    for name, clips in motion.items():
        # Same seed, same clips: only the labels change with the target.
        np.testing.assert_array_equal(clips.frames, tiny_data[name].frames)
        np.testing.assert_array_equal(clips.digits, tiny_data[name].digits)
        names = np.array(moving_digits.MOTION_NAMES)[clips.labels]  # (n, frames)
        assert np.all(names[:, 0] == "still")
        for i in range(len(clips.labels)):
            for t in range(1, clips.labels.shape[1]):
                step = np.sign(clips.positions[i, t] - clips.positions[i, t - 1])
                assert names[i, t] == DIRECTIONS[tuple(int(s) for s in step)]
    assert len(np.unique(motion["train"].labels)) == 9


# --- splits --------------------------------------------------------------------
def test_source_images_split_disjoint_stratified_and_deterministic(digits):
    splits = moving_digits.split_images(5, 0.15, 0.15)
    again = moving_digits.split_images(5, 0.15, 0.15)
    for name in moving_digits.SPLITS:
        np.testing.assert_array_equal(splits[name], again[name])
    assert not np.array_equal(moving_digits.split_images(6, 0.15, 0.15)["test"], splits["test"])
    everything = np.concatenate([splits[name] for name in moving_digits.SPLITS])
    assert len(everything) == len(set(everything.tolist())) == len(digits.images)  # disjoint, and all used
    for name, fraction in [("validation", 0.15), ("test", 0.15), ("train", 0.7)]:
        counts = np.bincount(digits.target[splits[name]], minlength=10)
        np.testing.assert_allclose(counts, fraction * np.bincount(digits.target), atol=1)
    # Disjoint as pictures too, not only as indices.
    pictures = {name: {digits.images[i].tobytes() for i in splits[name]} for name in moving_digits.SPLITS}
    assert not pictures["train"] & pictures["test"] and not pictures["train"] & pictures["validation"]
    assert not pictures["validation"] & pictures["test"]


def test_clips_use_only_their_own_splits_images_and_are_deterministic(tiny_data):
    config = tiny_config()
    pools = moving_digits.split_images(config.seed, config.validation_fraction, config.test_fraction)
    for name, clips in tiny_data.items():
        assert set(np.unique(clips.image_index)) <= set(pools[name].tolist())
    again = video_frames.load_data(tiny_config())
    for name in moving_digits.SPLITS:
        for field in ("frames", "labels", "positions", "image_index"):
            np.testing.assert_array_equal(getattr(again[name], field), getattr(tiny_data[name], field))
    other = video_frames.load_data(tiny_config(seed=1))
    assert not np.array_equal(other["train"].image_index, tiny_data["train"].image_index)
    # More training clips leave the held-out clips as they were.
    bigger = video_frames.load_data(tiny_config(train_clips=500))
    np.testing.assert_array_equal(bigger["test"].frames, tiny_data["test"].frames)


# --- model and training --------------------------------------------------------
@pytest.mark.parametrize("builtin", [False, True])
@pytest.mark.parametrize("cell, layer_class", [("lstm", "LSTM"), ("gru", "GRU")])
def test_build_model_uses_the_chosen_recurrent_layer(cell, layer_class, builtin):
    model = video_frames.build_model(tiny_config(cell=cell, builtin=builtin, units=5))
    recurrent = model.get_layer("recurrent")
    expected = getattr(keras.layers, layer_class) if builtin else getattr(keras_rnn_lab, layer_class)
    assert type(recurrent) is expected and recurrent.units == 5 and recurrent.return_sequences
    assert isinstance(model.get_layer("per_frame_cnn"), keras.layers.TimeDistributed)
    assert model.output_shape == (None, 6, 10)


@pytest.mark.parametrize("target, classes", [("digit", 10), ("motion", 9)])
def test_answers_at_every_frame_from_that_frame_and_earlier_ones_only(target, classes, tiny_data):
    model = video_frames.build_model(tiny_config(target=target))
    frames = tiny_data["test"].frames[:8]  # (8, 6, 12, 12, 1): batch 8 differs from the 6 frames on purpose
    logits = model.predict(frames, verbose=0)
    assert logits.shape == (8, 6, classes)
    # Each frame's features come from that frame alone: the CNN applied to it by hand.
    encoder = model.get_layer("per_frame_cnn").layer
    features = keras.Model(model.input, model.get_layer("per_frame_cnn").output).predict(frames, verbose=0)
    for t in range(6):
        np.testing.assert_allclose(features[:, t], encoder.predict(frames[:, t], verbose=0), rtol=1e-5, atol=1e-5)
    # Changing a later frame leaves the earlier answers alone but changes its own.
    changed = frames.copy()
    changed[:, 4] = 1.0 - changed[:, 4]
    changed_logits = model.predict(changed, verbose=0)
    np.testing.assert_allclose(changed_logits[:, :4], logits[:, :4], atol=1e-5)
    assert not np.allclose(changed_logits[:, 4], logits[:, 4], atol=1e-3)
    # A smaller last batch (retraced with an unknown batch size) gives the same answers.
    np.testing.assert_allclose(model.predict(frames[:5], verbose=0), logits[:5], atol=1e-5)


def test_tiny_preset_learns(tiny_result):
    config = tiny_result.config
    losses = tiny_result.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    test = video_frames.load_data(config)["test"]
    untrained = np.mean(video_frames.predict_classes(video_frames.build_model(config), test.frames) == test.labels)
    # Ten digits: chance is 10%.
    assert untrained < 0.2
    assert tiny_result.accuracy["test"] > 0.3
    assert tiny_result.accuracy["test"] > untrained + 0.2


def test_reported_accuracies_are_the_models_own(tiny_result):
    data = video_frames.load_data(tiny_result.config)
    correct = {
        name: video_frames.predict_classes(tiny_result.model, clips.frames) == clips.labels
        for name, clips in data.items()
    }
    for name in moving_digits.SPLITS:
        assert tiny_result.accuracy[name] == pytest.approx(correct[name].mean(), abs=1e-9)
    np.testing.assert_allclose(tiny_result.by_position, correct["test"].mean(axis=0))
    assert np.mean(tiny_result.by_position) == pytest.approx(tiny_result.accuracy["test"])


def test_accuracy_by_frames_the_digit_was_shown():
    correct = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=bool)
    image_index = np.array([[5, 5, 7, 7], [3, 3, 3, 3]])  # ages [1, 2, 1, 2] and [1, 2, 3, 4]
    by_position, by_age = video_frames.frame_accuracy(correct, image_index)
    np.testing.assert_allclose(by_position, [0.5, 0.5, 1.0, 0.5])
    np.testing.assert_allclose(by_age, [2 / 3, 2 / 3, 1.0, 0.0])


# --- the command ---------------------------------------------------------------
def test_main_trains_prints_the_report_and_saves(tmp_path, capsys):
    out = tmp_path / "video.keras"
    result = video_frames.main(
        ["--preset", "tiny", "--cell", "gru", "--epochs", "2", "--frames", "5", "--out", str(out)]
    )
    assert (result.config.cell, result.config.epochs, result.config.frames) == ("gru", 2, 5)
    printed = capsys.readouterr().out
    assert f"test {100 * result.accuracy['test']:.2f}%" in printed
    position_row = next(line for line in printed.splitlines() if line.strip().startswith("frame position"))
    assert position_row.split()[2:] == [f"{100 * a:.1f}" for a in result.by_position]
    frames = video_frames.load_data(result.config)["test"].frames
    saved = keras.saving.load_model(out)
    np.testing.assert_allclose(saved.predict(frames, verbose=0), result.model.predict(frames, verbose=0), atol=1e-5)


@pytest.mark.parametrize(
    "argv, argument",
    [
        (["--target", "colour"], "--target"),
        (["--canvas-size", "6"], "canvas_size"),
        (["--frames", "0"], "frames"),
    ],
)
def test_bad_command_line_names_the_argument(argv, argument, capsys):
    with pytest.raises(SystemExit) as exit_info:
        video_frames.main(argv)
    assert exit_info.value.code == 2
    assert argument in capsys.readouterr().err


# --- errors from the Python API ------------------------------------------------
@pytest.mark.parametrize(
    "overrides, error, argument",
    [
        ({"canvas_size": 7}, ValueError, "canvas_size"),
        ({"canvas_size": 16.0}, TypeError, "canvas_size"),
        ({"frames": 0}, ValueError, "frames"),
        ({"target": "colour"}, ValueError, "target"),
        ({"digits_per_clip": 11}, ValueError, "digits_per_clip"),
        ({"max_speed": 9}, ValueError, "max_speed"),
        ({"canvas_size": 8}, ValueError, "max_speed"),  # no room to move at all
        ({"test_fraction": 0.0}, ValueError, "test_fraction"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, ValueError, "validation_fraction"),
        ({"filters": 16}, TypeError, "filters"),
    ],
)
def test_bad_config_names_the_argument(overrides, error, argument):
    with pytest.raises(error, match=f"`{argument}`.*received"):
        video_frames.Config(**overrides)


def test_make_clips_rejects_bad_arguments(rng):
    pool = np.arange(1797)
    with pytest.raises(ValueError, match=r"`canvas_size`.*at least 8.*received 5"):
        moving_digits.make_clips(rng, pool, 10, canvas_size=5, frames=4)
    with pytest.raises(ValueError, match=r"`frames`.*received 0"):
        moving_digits.make_clips(rng, pool, 10, canvas_size=12, frames=0)
    with pytest.raises(ValueError, match=r"`target`.*received 'colour'"):
        moving_digits.make_clips(rng, pool, 10, canvas_size=12, frames=4, target="colour")
    only_ones = np.flatnonzero(load_digits().target == 1)
    with pytest.raises(ValueError, match=r"`pool`.*every digit"):
        moving_digits.make_clips(rng, only_ones, 10, canvas_size=12, frames=4)
