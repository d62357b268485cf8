"""The tf.distribute custom step: Keras's own step on one replica, identical weights on two workers."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab.training import config_from_preset, distributed
from recipes import parity

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_parity_model():
    keras.utils.set_random_seed(3)
    return parity.build_model(config_from_preset(parity.Config, parity.PRESETS, "tiny", cell="gru"))


def test_one_step_equals_keras_train_on_batch():
    split = parity.random_bit_strings(np.random.default_rng(0), 32, (1, 6))
    dataset = tf.data.Dataset.from_tensor_slices((split.tokens, split.labels))  # one batch of 32, in order
    model, _ = distributed.fit_distributed(
        tf.distribute.MirroredStrategy(), tiny_parity_model, dataset, epochs=1, global_batch_size=32, verbose=0
    )
    reference = tiny_parity_model()
    reference.train_on_batch(split.tokens, split.labels)
    for ours, theirs in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_strategy_arguments_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="must be one of"):
        distributed.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distributed.make_strategy("multi-worker")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# slow: several processes and a kill, 35-75 s on two cores; .ci/run runs the slow tests after the default run.
@pytest.mark.slow
def test_two_workers_train_to_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = [
        sys.executable,
        "-m",
        "keras_rnn_lab.cli",
        "train",
        "parity",
        "--strategy",
        "multi-worker",
        "--preset",
        "tiny",
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "model.keras"),
        "--run-dir",
        str(tmp_path / "run"),
    ]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        processes.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, out in zip(processes, outputs):
        assert process.returncode == 0, out[-3000:]
        losses = [float(v) for v in re.findall(r"Epoch \d/2 - loss: ([\d.]+)", out)]
        assert len(losses) == 2 and losses[1] < losses[0]  # it learns
    # The chief logs every epoch; every worker checkpoints every epoch.
    with open(tmp_path / "run" / "metrics.csv") as log:
        assert [float(row.split(",")[1]) for row in log.read().splitlines()[1:]] == pytest.approx(losses, abs=1e-4)
    assert (tmp_path / "run" / "last.keras").exists() and (tmp_path / "run" / "last-worker1.keras").exists()
    chief = keras.saving.load_model(tmp_path / "model.keras")
    other = keras.saving.load_model(tmp_path / "model-worker1.keras")
    for a, b in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["captioning", "char_lm", "sentiment", "translation", "video_frames"])
def test_recipes_of_every_data_kind_train_under_the_mirrored_strategy(name, tmp_path):
    # Arrays, sample weights (captioning), strings and batched tf.data pipelines (char_lm, sentiment, translation).
    from keras_rnn_lab import cli

    model, history = cli.main(
        ["train", name, "--strategy", "mirrored", "--preset", "tiny", "--epochs", "1", "--run-dir", str(tmp_path)]
    )
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and model.count_params() > 0
