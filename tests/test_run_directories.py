"""Run directories you can trust (issue 17): a killed run's state survives any
rerun, one process per directory, damaged or mismatched checkpoints named, a
diverged fit reported as a failure, output paths checked before training.

A "killed" run here is a fit stopped by an exception right after an epoch was
recorded: the same state a SIGKILL leaves (BackupAndRestore's files, no
end-of-fit cleanup).  The real SIGKILL is in test_runs.py (slow)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import keras
import pytest

from keras_rnn_lab import cli
from keras_rnn_lab.errors import RunError
from keras_rnn_lab.training import command_line, model_files, runs

ROOT = pathlib.Path(__file__).resolve().parents[1]
PARITY = ["train", "parity", "--preset", "tiny", "--set", "train_size=400", "--set", "patience=9"]


class Killed(Exception):
    """Stands for SIGKILL: ends the fit without any end-of-training hook."""


def run(argv, capsys=None):
    """(exit status, stdout, stderr) of `keras-rnn-lab ARGV`, as the console script runs it."""
    status = command_line.run_command(cli.main, "keras-rnn-lab", argv)
    captured = capsys.readouterr() if capsys else None
    return status, (captured.out if captured else ""), (captured.err if captured else "")


def killed_after(epochs, monkeypatch):
    """Make every fit in a run directory die once `epochs` epochs are recorded."""
    original = runs.RunDirectory.callbacks

    class KillAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == epochs:
                raise Killed

    monkeypatch.setattr(runs.RunDirectory, "callbacks", lambda self, *a: original(self, *a) + [KillAfter()])


def folder_bytes(path):
    return {
        os.path.relpath(os.path.join(root, name), path): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(path)
        for name in names
        if name != runs.LOCK_FILE and "logs" not in root
    }


def kill_a_run(tmp_path, monkeypatch, epochs_done=3, total=6):
    with monkeypatch.context() as patch:
        killed_after(epochs_done, patch)
        with pytest.raises(Killed):
            cli.main([*PARITY, "--epochs", str(total), "--run-dir", str(tmp_path)])
    assert json.loads((tmp_path / "backup" / "parity_lstm" / "training_metadata.json").read_text())["epoch"] == 3


# --- 1. resume never loses state ------------------------------------------------
def test_a_rerun_asking_for_fewer_epochs_than_done_keeps_the_backup_and_saves_the_best_model(
    tmp_path, monkeypatch, capsys
):
    kill_a_run(tmp_path, monkeypatch)
    before = folder_bytes(tmp_path)
    out = tmp_path.parent / f"{tmp_path.name}-r5.keras"
    status, out_text, _ = run([*PARITY, "--epochs", "2", "--out", str(out), "--run-dir", str(tmp_path)], capsys)
    assert status == 0
    assert (
        "parity_lstm trained 3 epochs before it was stopped; --epochs 2 asks for no more: training nothing" in out_text
    )
    after = folder_bytes(tmp_path)
    assert json.loads(after.pop("config.json"))[0]["epochs"] == 2  # config.json: the latest command's Config
    before.pop("config.json")
    assert after == before  # backup, metrics, best and last models: all unchanged
    assert model_files.read_record(out)[0]["recipe"] == "parity"
    # The original command still resumes at epoch 4 and ends with six epochs, each once.
    [result] = cli.main([*PARITY, "--epochs", "6", "--run-dir", str(tmp_path)])
    assert runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")["epoch"] == list(range(6))
    assert len(result.history["loss"]) == 3  # only epochs 4-6 were trained by the rerun
    assert not (tmp_path / "backup" / "parity_lstm").exists()


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_the_reported_char_lm_case_keeps_its_state_and_saves_the_model(tmp_path, monkeypatch, capsys):
    # The issue's own report: char_lm killed after epoch 3 of 6, rerun with --epochs 2 --out r5.keras.
    char_lm = ["train", "char_lm", "--preset", "tiny", "--set", "patience=9", "--run-dir", str(tmp_path)]
    with monkeypatch.context() as patch:
        killed_after(3, patch)
        with pytest.raises(Killed):
            cli.main([*char_lm, "--epochs", "6"])
    before = folder_bytes(tmp_path)
    before.pop("config.json")
    out = tmp_path.parent / f"{tmp_path.name}-r5.keras"
    status, _, err = run([*char_lm, "--epochs", "2", "--out", str(out)], capsys)
    assert status == 0, err
    assert model_files.read_record(out)[0]["recipe"] == "char_lm"
    after = folder_bytes(tmp_path)
    after.pop("config.json")
    assert after == before and any(name.startswith("backup") for name in after)
    cli.main([*char_lm, "--epochs", "6"])  # the original command: resumes, never starts again
    [metrics] = tmp_path.glob("*/metrics.csv")
    assert runs.read_metrics(metrics)["epoch"] == list(range(6))


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_a_resumed_fit_keeps_the_best_model_of_the_killed_epochs_unless_beaten(tmp_path, monkeypatch):
    kill_a_run(tmp_path, monkeypatch)
    killed_rows = (tmp_path / "parity_lstm" / "metrics.csv").read_text().splitlines()
    cli.main([*PARITY, "--epochs", "6", "--run-dir", str(tmp_path)])
    metrics = runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")
    assert (tmp_path / "parity_lstm" / "metrics.csv").read_text().splitlines()[:4] == killed_rows  # kept as they were
    # best.keras is the best of all six epochs, the killed run's three included.
    best = keras.saving.load_model(tmp_path / "parity_lstm" / "best.keras")
    x, y = _validation_split()
    assert best.evaluate(x, y, verbose=0)[0] == pytest.approx(min(metrics["val_loss"]), rel=1e-4)


def _validation_split():
    from recipes import parity

    config = parity.RECIPE.config("tiny", {"train_size": 400, "patience": 9})
    validation = parity.load_data(config)["validation"]
    return validation.tokens, validation.labels


# --- 2. one run per directory ---------------------------------------------------
HOLD_THE_LOCK = """
import sys, time
from keras_rnn_lab.training import runs
run = runs.RunDirectory(sys.argv[1])
run.open()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_a_locked_run_directory_is_refused_naming_the_holder(tmp_path, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, _, err = run([*PARITY, "--epochs", "1", "--run-dir", str(tmp_path)], capsys)
    finally:
        holder.kill()
        holder.wait()
    assert status == 1
    assert f"run directory {str(tmp_path)!r} is in use by process {holder.pid} on" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "parity_lstm").exists()  # the refused run wrote nothing


def test_a_stale_lock_of_a_killed_process_is_taken_over(tmp_path, capsys):
    (tmp_path / runs.LOCK_FILE).write_text("process 999999 on somewhere since 2026-12-01 10:00:00")
    status, out, _ = run([*PARITY, "--epochs", "1", "--run-dir", str(tmp_path)], capsys)
    assert status == 0
    assert "taking over the lock of process 999999 on somewhere" in out
    assert (tmp_path / runs.LOCK_FILE).read_text() == ""  # released at the end


# --- 3. damaged or mismatched checkpoints ----------------------------------------
@pytest.mark.parametrize(
    "damage, named",
    [
        (lambda backup: (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n" + b"\0" * 94), "latest.weights.h5"),
        pytest.param(
            lambda backup: (backup / "training_metadata.json").write_text(""),
            "training_metadata.json",
            marks=pytest.mark.slow,  # 10 s; the truncated weights case stays in the default run
        ),
    ],
    ids=["truncated weights", "empty metadata"],
)
def test_a_damaged_checkpoint_is_named_with_the_command_that_starts_again(tmp_path, monkeypatch, capsys, damage, named):
    kill_a_run(tmp_path, monkeypatch)
    backup = tmp_path / "backup" / "parity_lstm"
    for copy in backup.glob("*.bkp"):
        copy.unlink()  # no older copy to fall back on
    damage(backup)
    before = folder_bytes(tmp_path)
    status, _, err = run([*PARITY, "--epochs", "6", "--run-dir", str(tmp_path)], capsys)
    assert status == 1 and "Traceback" not in err
    assert named in err and str(tmp_path) in err
    assert (
        f"start again with: keras-rnn-lab train parity {' '.join(PARITY[2:])} --epochs 6 --run-dir {tmp_path} --fresh"
        in err
    )
    assert folder_bytes(tmp_path) == before  # nothing overwritten
    # The command it names works.
    assert run([*PARITY, "--epochs", "1", "--run-dir", str(tmp_path), "--fresh"])[0] == 0
    assert runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")["epoch"] == [0]


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_a_damaged_state_file_falls_back_on_the_copy_of_the_epoch_before(tmp_path, monkeypatch, capsys):
    kill_a_run(tmp_path, monkeypatch)
    (tmp_path / "backup" / "parity_lstm" / "training_metadata.json").write_text("")  # the .bkp copies stay
    status, out, err = run([*PARITY, "--epochs", "6", "--run-dir", str(tmp_path)], capsys)
    assert status == 0, err
    assert "training_metadata.json is damaged" in out and "resuming from the copy of the epoch before" in out
    assert runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")["epoch"] == list(range(6))


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_a_fit_killed_before_its_first_backup_is_trained_again_not_taken_as_finished(tmp_path, monkeypatch):
    kill_a_run(tmp_path, monkeypatch)
    shutil.rmtree(tmp_path / "backup")  # as a kill between last.keras and the first backup leaves it
    [result] = cli.main([*PARITY, "--epochs", "2", "--run-dir", str(tmp_path)])
    assert len(result.history["loss"]) == 2  # trained, from the start
    assert runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")["epoch"] == [0, 1]
    assert (tmp_path / "parity_lstm" / runs.FINISHED_FILE).exists()


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_fresh_removes_only_the_runs_files_and_only_once_a_fit_begins(tmp_path, monkeypatch, capsys):
    kill_a_run(tmp_path, monkeypatch)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "data").mkdir()
    before = folder_bytes(tmp_path)
    # A usage error after the Config (a missing file) starts nothing, so nothing is removed.
    status, _, _ = run(["train", "char_lm", "--preset", "tiny", "--text", "missing.txt", "--run-dir", str(tmp_path),
                        "--fresh"], capsys)  # fmt: skip
    assert status == 2
    after = folder_bytes(tmp_path)
    assert {k: v for k, v in after.items() if k != "config.json"} == {
        k: v for k, v in before.items() if k != "config.json"
    }
    assert run([*PARITY, "--epochs", "1", "--run-dir", str(tmp_path), "--fresh"])[0] == 0
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "data").is_dir()
    assert runs.read_metrics(tmp_path / "parity_lstm" / "metrics.csv")["epoch"] == [0]
    assert not (tmp_path / "backup" / "parity_lstm").exists()


def test_rerunning_with_another_configuration_names_the_fields_that_differ(tmp_path, monkeypatch, capsys):
    kill_a_run(tmp_path, monkeypatch)
    before = folder_bytes(tmp_path)
    status, _, err = run([*PARITY, "--epochs", "6", "--units", "64", "--run-dir", str(tmp_path)], capsys)
    assert status == 1 and "Traceback" not in err
    assert "holds a run with another configuration (units 8 there, 64 now)" in err and "--fresh" in err
    assert folder_bytes(tmp_path) == before


def test_a_damaged_config_json_is_named(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    status, _, err = run([*PARITY, "--epochs", "1", "--run-dir", str(tmp_path)], capsys)
    assert status == 1 and "config.json" in err and "is damaged" in err and "--fresh" in err


# --- 5. a diverged run is a failure ------------------------------------------------
def test_a_diverged_run_exits_non_zero_and_saves_nothing(tmp_path, capsys):
    out = tmp_path / "model.keras"
    argv = [
        *PARITY,
        "--epochs",
        "2",
        "--set",
        "learning_rate=1e38",
        "--out",
        str(out),
        "--run-dir",
        str(tmp_path / "r"),
    ]
    status, out_text, err = run(argv, capsys)
    assert status == 1 and "Traceback" not in err
    assert "training diverged: the loss became" in err and "Lower --learning-rate" in err
    assert not out.exists()
    assert not (tmp_path / "r" / "parity_lstm" / "best.keras").exists()
    assert "20-30" not in out_text  # no result table (its header names the long split's lengths)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--learning-rate", "inf", "argument --learning-rate: expected a finite positive number; received 'inf'"),
        ("--learning-rate", "nan", "argument --learning-rate: expected a finite positive number; received 'nan'"),
        ("--seed", "-1", "argument --seed: expected an int in [0, 2**32 - 1]; received '-1'"),
        ("--seed", str(2**32), f"argument --seed: expected an int in [0, 2**32 - 1]; received '{2**32}'"),
        ("--set", "learning_rate=1e999", "Argument `learning_rate` must be a finite float > 0; received inf."),
        ("--set", "seed=-5", "Argument `seed` must be an int in [0, 2**32 - 1]; received -5."),
    ],
)
def test_values_that_would_ruin_the_run_are_usage_errors(flag, value, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["train", "parity", "--preset", "tiny", flag, value], capsys)
    assert status == 2 and err.strip().endswith(message)
    assert list(tmp_path.iterdir()) == []  # no runs/parity for a usage error


# --- 6. late failures come first -------------------------------------------------
def test_an_out_path_in_new_directories_is_created(tmp_path):
    out = tmp_path / "nodir" / "sub" / "p.keras"
    assert run([*PARITY, "--epochs", "1", "--out", str(out), "--no-run-dir"])[0] == 0
    assert model_files.read_record(out)[0]["recipe"] == "parity"


def test_an_out_path_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    status, _, err = run([*PARITY, "--out", "afile/sub/p.keras"], capsys)
    assert status == 2
    assert err.strip().endswith(
        f"argument --out: cannot create 'afile/sub/p.keras': {str(tmp_path / 'afile')!r} is not a directory"
    )
    assert sorted(os.listdir(tmp_path)) == ["afile"]  # no run directory, no training


# --- 9. the small ones -------------------------------------------------------------
def test_help_and_usage_errors_create_no_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as help_exit:
        cli.main(["train", "parity", "--help"])
    assert help_exit.value.code == 0
    assert run(["train", "parity", "--units", "0"], capsys)[0] == 2
    assert run(["train", "parity", "--set", "nonsense=1"], capsys)[0] == 2
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_before_fitting_leaves_no_directory_it_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(["train", "char_lm", "--preset", "tiny", "--text", "missing.txt"], capsys)
    assert status == 2 and "no such file 'missing.txt'" in err
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_are_labelled_as_typed(capsys):
    assert (
        run(["train", "parity", "--units", "0"], capsys)[2]
        .splitlines()[-1]
        .startswith("keras-rnn-lab train parity: error: argument --units")
    )
    from recipes import parity

    status = command_line.run_command(parity.main, "python -m recipes.parity", ["--units", "0"])
    assert status == 2 and capsys.readouterr().err.splitlines()[-1].startswith("python -m recipes.parity: error:")


@pytest.mark.parametrize("form", [["--run-dir", "R"], ["--run-dir=R"]])
def test_run_dir_takes_both_argparse_forms(form, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run([*PARITY, "--epochs", "1", *form])[0] == 0
    assert (tmp_path / "R" / "parity_lstm" / "best.keras").exists()


# slow (10-15 s): .ci/run runs it after the default run; the default run keeps one test per finding.
@pytest.mark.slow
def test_two_models_of_one_name_in_a_run_get_their_own_folders(tmp_path):
    cli.main([*PARITY, "--epochs", "1", "--seeds", "0,1", "--run-dir", str(tmp_path)])
    assert (tmp_path / "parity_lstm" / "best.keras").exists() and (tmp_path / "parity_lstm-2" / "best.keras").exists()


def test_a_run_directory_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    status, _, err = run([*PARITY, "--run-dir", str(tmp_path / "file")], capsys)
    assert status == 1 and "is a file; expected a directory (--run-dir)" in err


def test_runs_raise_run_errors_through_the_library_too(tmp_path):
    holder = runs.RunDirectory(tmp_path)
    holder.open()
    try:
        with pytest.raises(RunError, match="is in use by process"):
            runs.RunDirectory(tmp_path).open()
    finally:
        holder.close()
