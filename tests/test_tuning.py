"""tuning/: hypermodels build the recipes' models, searches run, resume and share trials."""

import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time

import keras
import keras_tuner
import numpy as np
import pytest

from keras_rnn_lab.diagnostics import capacity
from tuning import hypermodels, search

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The quickest real search: tiny parity strings, at most two epochs per trial.
TINY_SEARCH = ["parity", "--preset", "tiny", "--max-epochs", "2", "--tuner", "random"]


@pytest.mark.parametrize("name", sorted(hypermodels.HYPERMODELS))
def test_every_hypermodel_builds_the_recipes_default_from_default_hyperparameters(name):
    hypermodel = hypermodels.get(name, preset="tiny", capacity_action="ignore")
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert isinstance(model, keras.Model) and model.optimizer is not None
    # Default HyperParameters are the recipe's own preset: the search starts from it.
    assert hypermodel.config(hp) == hypermodel.base_config
    reference = hypermodel.build_model(hypermodel.base_config)
    assert model.count_params() == reference.count_params()
    # The guidance: the learning rate is searched on a log scale in every space.
    registered = {p.name: p for p in hp.space}
    assert registered["learning_rate"].sampling == "log"
    for penalty in ("kernel_l1", "kernel_l2", "recurrent_l1", "recurrent_l2"):
        assert 0.0 in registered[penalty].values
    assert registered["recurrent_kernel_dropout"].default == 0.0  # weight drop is searched, off by default


# The decoder recipes' fits (10-20 s each) run with the slow tests.
SLOW_FITS = ("captioning", "dialogue", "translation")


@pytest.mark.parametrize(
    "name",
    [n if n not in SLOW_FITS else pytest.param(n, marks=pytest.mark.slow) for n in sorted(hypermodels.HYPERMODELS)],
)
def test_every_hypermodel_fits_and_reports_the_validation_loss(name):
    hypermodel = hypermodels.get(name, preset="tiny", capacity_action="ignore", epochs=1)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model).history
    assert len(history["val_loss"]) == 1 and np.isfinite(history["val_loss"][0])
    assert hypermodel.count_examples() > 0


def test_searched_values_reach_the_model():
    hypermodel = hypermodels.get("parity", preset="tiny")
    hp = keras_tuner.HyperParameters()
    hypermodel.search_space(hp)
    hp.values.update(units=4, cell="gru", recurrent_l2=1e-3, learning_rate=5e-3)
    model = hypermodel.build(hp)
    layer = next(layer for layer in model.layers if hasattr(layer, "cell"))
    assert type(layer).__name__ == "GRU" and layer.cell.units == 4
    assert layer.cell.recurrent_regularizer.l2 == pytest.approx(1e-3)
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-3)


def test_searched_weight_drop_reaches_the_layer():
    hypermodel = hypermodels.get("parity", preset="tiny")
    hp = keras_tuner.HyperParameters()
    hypermodel.search_space(hp)
    hp.values.update(recurrent_kernel_dropout=0.3)
    model = hypermodel.build(hp)
    layer = next(layer for layer in model.layers if hasattr(layer, "cell"))
    assert layer.cell.recurrent_kernel_dropout == pytest.approx(0.3)


def test_guard_fires_on_an_oversized_model():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("units", 64)  # 64 LSTM units: ~19k parameters for 2,000 tiny training strings
    with pytest.warns(capacity.OversizedModelWarning, match="2,000 training strings"):
        hypermodels.get("parity", preset="tiny").build(hp)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="trainable parameters for 2,000"):
        hypermodels.get("parity", preset="tiny", capacity_action="reject").build(hp)


@pytest.mark.slow
def test_two_trial_random_search_reports_and_saves_the_best(tmp_path, capsys):
    start = time.perf_counter()
    summaries = search.main([*TINY_SEARCH, "--max-trials", "2", "--directory", str(tmp_path)])
    assert time.perf_counter() - start < 60
    assert sorted(s.trial_id for s in summaries) == ["0", "1"]
    assert summaries[0].val_loss <= summaries[1].val_loss
    out = capsys.readouterr().out
    assert "trial 0 completed" in out and "trial 1 completed" in out and "params/example" in out
    # Trial 0 is the recipe's own configuration: its parameter count is the preset model's.
    default = next(s for s in summaries if s.trial_id == "0")
    preset_model = hypermodels.get("parity", preset="tiny").build(keras_tuner.HyperParameters())
    assert default.capacity.parameters == preset_model.count_params()
    assert "0*" in out and "the recipe's defaults" in out
    project = tmp_path / "parity"
    best = keras.saving.load_model(project / "best_model.keras")
    assert best.count_params() == summaries[0].capacity.parameters
    assert (project / "val_loss_vs_learning_rate.png").stat().st_size > 1000


def test_unknown_recipe_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        search.main(["nosuch"])
    assert exit_info.value.code == 2 and "invalid choice: 'nosuch'" in capsys.readouterr().err


def _search_process(args, env=None, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "tuning.search", *args],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _completed(project):
    """trial id -> (hyperparameter values, score) of every completed trial on disk."""
    trials = {}
    for path in pathlib.Path(project).glob("trial_*/trial.json"):
        trial = json.loads(path.read_text())
        if trial["status"] == "COMPLETED":
            trials[trial["trial_id"]] = (trial["hyperparameters"]["values"], trial["score"])
    return trials


# slow: several processes and a kill, 35-75 s on two cores; .ci/run runs the slow tests after the default run.
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["between trials", "inside a trial"])
def test_a_killed_search_resumes_and_keeps_its_finished_trials(moment, tmp_path):
    args = [*TINY_SEARCH, "--max-trials", "3", "--directory", str(tmp_path)]
    process = _search_process(args)
    deadline = time.monotonic() + 120
    while not _completed(tmp_path / "parity") and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    # Between trials: as soon as the first one is written; inside one: at a random point of the next.
    delay = 0.0 if moment == "between trials" else random.uniform(0.3, 2.0)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)  # no chance to save anything more
    process.communicate()
    finished = _completed(tmp_path / "parity")
    assert 1 <= len(finished) < 3, f"kill the search after its first trial, before its last (delay {delay:.2f} s)"
    rerun = _search_process(args)
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out
    after = _completed(tmp_path / "parity")
    assert len(after) == 3
    assert {trial_id: after[trial_id] for trial_id in finished} == finished  # kept, not rerun
    for trial_id in finished:
        assert f"trial {trial_id} completed" not in out


# slow: a one-trial search (about 15 s on two cores).
@pytest.mark.slow
def test_a_finished_trial_still_ongoing_in_oracle_json_is_not_run_again(tmp_path, capsys):
    """keras-tuner saves oracle.json before it drops a finished trial from
    `ongoing_trials`; a search killed then (before the next trial) must not
    retry that trial on resume.  The kill's moment, written by hand."""
    search.main([*TINY_SEARCH, "--max-trials", "1", "--directory", str(tmp_path)])
    oracle_file = tmp_path / "parity" / "oracle.json"
    state = json.loads(oracle_file.read_text())
    state["ongoing_trials"] = {"tuner0": "0"}
    oracle_file.write_text(json.dumps(state))
    capsys.readouterr()
    summaries = search.main([*TINY_SEARCH, "--max-trials", "2", "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert "trial 0 completed" not in out and "trial 1 completed" in out
    assert sorted(s.trial_id for s in summaries) == ["0", "1"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# slow: several processes and a kill, 35-75 s on two cores; .ci/run runs the slow tests after the default run.
@pytest.mark.slow
def test_a_chief_and_two_workers_share_the_trials(tmp_path):
    args = [*TINY_SEARCH, "--max-trials", "4", "--directory", str(tmp_path)]
    address = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = _search_process(args, env={**address, "KERASTUNER_TUNER_ID": "chief"})
    time.sleep(3)  # let the chief open its port first (workers retry, but this keeps logs clean)
    workers = [_search_process(args, env={**address, "KERASTUNER_TUNER_ID": f"tuner{i}"}) for i in range(2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    chief_out, _ = chief.communicate(timeout=120)  # the chief exits once the search is over
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
        assert "completed: val_loss" in out, f"this worker ran no trial:\n{out}"
    assert chief.returncode == 0, chief_out
    assert len(_completed(tmp_path / "parity")) == 4
    assert "best 4 of 4 completed trials" in chief_out


def test_a_worker_without_tensorboard_says_so_before_taking_a_trial(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.plugins.hparams.api", None)  # import now fails
    with pytest.raises(SystemExit, match="cannot run trials: .*tensorboard.*pip install"):
        search.preflight(hypermodels.get("parity", preset="tiny"))


def test_a_search_refuses_a_preset_without_validation_data():
    hypermodel = hypermodels.get("char_lm", preset="hello", capacity_action="ignore", epochs=1)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    with pytest.raises(ValueError, match="A search needs validation data"):
        hypermodel.fit(hp, model)


def test_every_trainable_recipe_has_a_search_space():
    import recipes

    assert sorted(hypermodels.SEARCH_SPACES) == sorted(recipes.TRAINABLE)
