"""Run directories: what a run records, and a killed run that resumes at its next epoch."""

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

from keras_rnn_lab import cli
from keras_rnn_lab.training import model_files, runs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_run_records_config_models_metrics_logs_and_the_loss_plot(tmp_path):
    [result] = cli.main(["train", "parity", "--preset", "tiny", "--epochs", "3", "--run-dir", str(tmp_path)])
    folder = tmp_path / result.model.name
    [config] = json.loads((tmp_path / "config.json").read_text())
    assert config["class"] == "recipes.parity.Config" and config["epochs"] == 3 and config["train_lengths"] == [1, 6]
    metrics = runs.read_metrics(folder / "metrics.csv")
    assert metrics["epoch"] == [0, 1, 2] and metrics["loss"] == pytest.approx(result.history["loss"])
    for name in ("best.keras", "last.keras", "loss.png"):
        assert (folder / name).stat().st_size > 1000
    assert any((folder / "logs" / "train").iterdir())  # TensorBoard event files
    assert not (tmp_path / "backup" / result.model.name).exists()  # a finished fit leaves no backup
    # The models record their recipe.
    assert model_files.read_record(folder / "best.keras")[0]["recipe"] == "parity"
    # Rerunning a finished run trains nothing: its best model and every file are kept.
    before = {name: (folder / name).read_bytes() for name in ("best.keras", "last.keras", "metrics.csv")}
    [again] = cli.main(["train", "parity", "--preset", "tiny", "--epochs", "2", "--run-dir", str(tmp_path)])
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert again.history["loss"] == pytest.approx(result.history["loss"])
    assert again.accuracy == pytest.approx(result.accuracy)  # the best weights came back
    # --fresh starts again: its metrics are the new run's alone.
    cli.main(["train", "parity", "--preset", "tiny", "--epochs", "2", "--run-dir", str(tmp_path), "--fresh"])
    assert runs.read_metrics(folder / "metrics.csv")["epoch"] == [0, 1]


def test_without_a_run_directory_nothing_is_recorded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.main(["train", "parity", "--preset", "tiny", "--epochs", "1", "--no-run-dir"])
    assert list(tmp_path.iterdir()) == [] and runs.current() is None


@pytest.mark.parametrize(
    "losses, val_losses, expected",
    [
        ([3, 2, 1, 0.5], [3, 2, 2.5, 3], 1),
        ([3, 2, 1], [3, 2, 1], None),
        ([1, 2, 3], [3, 2, 2.5], None),
        ([1], [1], None),
    ],
)
def test_overfitting_begins_at_the_best_validation_epoch_when_training_goes_on_improving(losses, val_losses, expected):
    assert runs.overfitting_epoch(losses, val_losses) == expected


# slow: several processes and a kill, 35-75 s on two cores; .ci/run runs the slow tests after the default run.
@pytest.mark.slow
def test_a_killed_run_resumes_at_its_next_epoch_and_keeps_what_it_finished(tmp_path):
    # Enough strings that an epoch takes about a second: time to kill it between epochs.
    command = [
        sys.executable,
        "-m",
        "keras_rnn_lab.cli",
        "train",
        "parity",
        "--preset",
        "tiny",
        "--epochs",
        "6",
        "--set",
        "train_size=40000",
        "--set",
        "patience=6",
        "--run-dir",
        str(tmp_path),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "parity_lstm" / "metrics.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:  # header + the first finished epoch
            break
        time.sleep(0.05)
    delay = random.uniform(0.0, 2.0)  # a random point after the first epoch: between epochs or inside one
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    finished_rows = metrics.read_text().splitlines()
    done_before = len(runs.read_metrics(metrics)["epoch"])
    assert 1 <= done_before < 6, f"the run must be killed part-way (killed {delay:.2f} s after epoch 1)"
    best = tmp_path / "parity_lstm" / "best.keras"
    assert best.exists()
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    first_epoch = int(re.search(r"Epoch (\d+)/6", rerun.stdout + rerun.stderr).group(1))
    # No finished epoch is trained again: the rerun starts after the last one the backup counted, which is
    # the last metrics row, or the one before when the kill fell between that row and the backup.
    assert first_epoch in (done_before, done_before + 1), (first_epoch, done_before)
    # Every epoch is in the metrics once, in order: none lost, none repeated; the finished ones unchanged
    # (the last row written may belong to an epoch whose backup the kill prevented: it is trained again).
    assert runs.read_metrics(metrics)["epoch"] == list(range(6))
    assert metrics.read_text().splitlines()[:done_before] == finished_rows[:done_before]
    # best.keras is the best epoch's of all six (the killed run's included), and records its recipe.
    assert model_files.read_record(best)[0]["recipe"] == "parity"
    from recipes import parity

    config = parity.RECIPE.config("tiny", {"train_size": 40000, "patience": 6})
    validation = parity.load_data(config)["validation"]
    loss = keras.saving.load_model(best).evaluate(validation.tokens, validation.labels, verbose=0)[0]
    assert loss == pytest.approx(min(runs.read_metrics(metrics)["val_loss"]), rel=1e-4)
