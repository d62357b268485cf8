"""Every command answers bad input in the user's terms (issue 17): one or two
lines naming the argument, file, model or environment variable, exit status
2 (usage) or 1 (runtime), and no traceback unless --debug asks for one.

The table runs each command as the console script does
(`run_command(cli.main, ...)`, in this process, for speed); a few rows at the
end go through real processes (`keras-rnn-lab`, `python -m recipes.X`)."""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from keras_rnn_lab import cli
from keras_rnn_lab.training import command_line

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad (and one good) inputs: name -> path."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = {
        name: folder / file
        for name, file in [
            ("latin1", "latin1.txt"),
            ("binary", "binary.txt"),
            ("empty", "empty.txt"),
            ("text_keras", "text.keras"),
            ("a_file", "a_file"),
        ]
    }
    paths["latin1"].write_bytes("Caf\xe9 cr\xe8me, na\xefve fa\xe7ade\n".encode("latin-1") * 20)
    paths["binary"].write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    paths["empty"].write_bytes(b"")
    paths["text_keras"].write_text("not a model")
    paths["a_file"].write_text("")
    paths["folder"] = folder / "folder"
    paths["folder"].mkdir()
    paths["keras_folder"] = folder / "folder.keras"
    paths["keras_folder"].mkdir()
    (paths["folder"] / "inside").write_text("")
    paths["missing"] = folder / "missing.keras"
    paths["parity_model"] = folder / "parity.keras"
    assert cli.main(["train", "parity", "--preset", "tiny", "--set", "train_size=200", "--epochs", "1", "--no-run-dir",
                     "--out", str(paths["parity_model"])])  # fmt: skip
    paths["truncated"] = folder / "truncated.keras"
    paths["truncated"].write_bytes(paths["parity_model"].read_bytes()[:3000])
    paths["unrecorded"] = folder / "unrecorded.keras"
    with zipfile.ZipFile(paths["parity_model"]) as source, zipfile.ZipFile(paths["unrecorded"], "w") as copy:
        for item in source.namelist():
            if item != "keras_rnn_lab.json":  # as saved before models recorded their recipe
                copy.writestr(item, source.read(item))
    paths["sentiment_model"] = folder / "sentiment.keras"  # the same file, recorded as a sentiment model
    with zipfile.ZipFile(paths["parity_model"]) as source, zipfile.ZipFile(paths["sentiment_model"], "w") as copy:
        for item in source.namelist():
            record = b'{"recipe": "sentiment", "keras_rnn_lab": "0.2.0"}'
            copy.writestr(item, record if item == "keras_rnn_lab.json" else source.read(item))
    paths["export"] = folder / "export"
    cli.main(["export", "parity", "--model", str(paths["parity_model"]), "--out", str(paths["export"])])
    return paths


# (argv with {name} placeholders for `files`, exit status, what the last line must contain)
CASES = [
    # the top level
    ([], 2, "the following arguments are required: COMMAND"),
    (["nosuch"], 2, "invalid choice: 'nosuch'"),
    (["list", "extra"], 2, "unrecognized arguments: extra"),
    # train: flags every recipe shares
    (["train", "nosuch"], 2, "argument recipe: invalid choice: 'nosuch'"),
    (["train", "parity", "--preset", "huge"], 2, "argument --preset: invalid choice: 'huge'"),
    (["train", "parity", "--epochs", "0"], 2, "argument --epochs: expected a positive int; received '0'"),
    (["train", "parity", "--epochs", "1.5"], 2, "argument --epochs: expected a positive int; received '1.5'"),
    (["train", "parity", "--units", "many"], 2, "argument --units: expected a positive int; received 'many'"),
    (["train", "parity", "--batch-size", "-3"], 2, "argument --batch-size: expected a positive int; received '-3'"),
    (["train", "parity", "--learning-rate", "inf"], 2, "argument --learning-rate: expected a finite positive number"),
    (["train", "parity", "--learning-rate", "-0.001"], 2, "argument --learning-rate: expected a finite positive"),
    (["train", "parity", "--clipnorm", "nan"], 2, "argument --clipnorm: expected a finite positive number"),
    (["train", "parity", "--clipnorm", "1", "--clipvalue", "1"], 2, "argument --clipvalue: not allowed with"),
    (["train", "parity", "--seed", "-1"], 2, "argument --seed: expected an int in [0, 2**32 - 1]; received '-1'"),
    (["train", "parity", "--seed", "1e3"], 2, "argument --seed: expected an int in [0, 2**32 - 1]"),
    (["train", "parity", "--seeds", "0,,1"], 2, "argument --seeds: expected comma-separated distinct ints"),
    (["train", "parity", "--set", "units"], 2, "argument --set: expected KEY=VALUE"),
    (["train", "parity", "--set", "nosuch=1"], 2, "Unknown Config fields ['nosuch']"),
    (["train", "parity", "--set", "units=0"], 2, "Argument `units` must be a positive int; received 0."),
    (["train", "parity", "--set", "dropout=1.5"], 2, "Argument `dropout` must be a float in [0, 1); received 1.5."),
    (["train", "parity", "--set", "train_lengths=(5,2)"], 2, "Argument `train_lengths` must be (min, max)"),
    (["train", "parity", "--set", "seed=-2"], 2, "Argument `seed` must be an int in [0, 2**32 - 1]; received -2."),
    (["train", "parity", "--set", "learning_rate=1e999"], 2, "Argument `learning_rate` must be a finite float > 0"),
    (["train", "parity", "--out", "model.h5"], 2, "argument --out: expected a path ending in .keras"),
    (["train", "parity", "--out", "{a_file}/sub/p.keras"], 2, "is not a directory"),
    (["train", "parity", "--out", "{folder}"], 2, "expected a path ending in .keras"),
    (["train", "parity", "--out", "{keras_folder}"], 2, "is a directory; expected the path of a file"),
    (["train", "parity", "--strategy", "mirrored", "--fresh"], 2, "argument --fresh: not allowed with --strategy"),
    (["sample", "--model", "{parity_model}", "--prime", ""], 2, "argument --prime: expected some text"),
    (["train", "parity", "--run-dir"], 2, "argument --run-dir: expected a directory; received None"),
    (["train", "parity", "--run-dir="], 2, "argument --run-dir: expected a directory; received ''"),
    (["train", "parity", "--no-run-dir", "--fresh"], 2, "argument --no-run-dir: not allowed with --run-dir or --fresh"),
    (["train", "parity", "--preset", "tiny", "--run-dir", "{a_file}"], 1, "is a file; expected a directory"),
    (["train", "parity", "--strategy", "bogus"], 2, "argument --strategy: invalid choice: 'bogus'"),
    # train: the recipes' own input files
    (["train", "char_lm", "--text", "{missing}"], 2, "no such file"),
    (["train", "char_lm", "--text", "{folder}"], 2, "is a directory; expected a UTF-8 text file"),
    (["train", "char_lm", "--text", "{binary}"], 2, "is a binary file"),
    (["train", "char_lm", "--text", "{empty}"], 2, "is empty"),
    (["train", "char_lm", "--text", "{latin1}"], 2, "iconv -f latin1 -t utf-8"),
    (["train", "char_lm", "--text", "{latin1}", "--tfds", "x"], 2, "argument --tfds: not allowed with"),
    (["train", "char_lm", "--tfds", "no_such_dataset"], 2, "no_such_dataset"),
    (["train", "sentiment", "--csv", "{latin1}"], 2, "is not UTF-8 text"),
    (["train", "sentiment", "--csv", "{binary}"], 2, "is a binary file"),
    (["train", "translation", "--tsv", "{latin1}"], 2, "is not UTF-8 text"),
    (["train", "captioning", "--captions", "{missing}", "--images", "{folder}"], 2, "no such file"),
    # evaluate
    (["evaluate", "parity"], 2, "the following arguments are required: --model"),
    (["evaluate", "parity", "--model", "{missing}"], 2, "argument --model: no such file"),
    (["evaluate", "parity", "--model", "{folder}"], 2, "is a directory; expected a .keras file"),
    (["evaluate", "parity", "--model", "{export}"], 2, "is a SavedModel export (for serving); expected a .keras file"),
    (["evaluate", "parity", "--model", "{text_keras}"], 2, "is not a Keras model file"),
    (["evaluate", "parity", "--model", "{truncated}"], 2, "is not a Keras model file"),
    (["evaluate", "sentiment", "--model", "{parity_model}"], 2, "is a 'parity' model; expected a 'sentiment' model"),
    (["evaluate", "sentiment", "--model", "{unrecorded}"], 2, "records no recipe and is not one the 'sentiment'"),
    (["evaluate", "vanishing_gradients", "--model", "{parity_model}"], 2, "trains no single model"),
    (["evaluate", "parity", "--model", "{parity_model}", "--preset", "huge"], 2, "Argument `preset` must be one of"),
    # export
    (["export", "parity", "--model", "{parity_model}"], 2, "the following arguments are required: --out"),
    (["export", "tagging", "--model", "{parity_model}", "--out", "x"], 2, "is a 'parity' model; expected a 'tagging'"),
    (["export", "char_lm", "--model", "{unrecorded}", "--out", "x"], 2, "records no recipe and is not one"),
    (["export", "parity", "--model", "{missing}", "--out", "x"], 2, "argument --model: no such file"),
    (["export", "parity", "--model", "{parity_model}", "--out", "{a_file}"], 2, "is a file"),
    (["export", "parity", "--model", "{parity_model}", "--out", "{folder}"], 2, "exists and is not empty"),
    (["export", "parity", "--model", "{parity_model}", "--out", "{a_file}/sub"], 2, "is not a directory"),
    (
        ["export", "parity", "--model", "{sentiment_model}", "--out", "x"],
        2,
        "is a 'sentiment' model; expected a 'parity'",
    ),
    (["export", "parity", "--model", "{parity_model}", "--out", "x", "--format", "tfjs"], 2, "invalid choice: 'tfjs'"),
    (
        ["export", "parity", "--model", "{parity_model}", "--out", "{folder}", "--format", "tflite"],
        2,
        "exists and is not empty",
    ),
    # sample
    (["sample"], 2, "the following arguments are required: --model"),
    (["sample", "--model", "{parity_model}"], 2, "is a 'parity' model; expected a 'char_lm' model"),
    (["sample", "--model", "{missing}"], 2, "argument --model: no such file"),
    (["sample", "--model", "{parity_model}", "--length", "-5"], 2, "argument --length: expected a positive int"),
    (["sample", "--model", "{parity_model}", "--temperature", "0"], 2, "argument --temperature: expected a finite"),
    (["sample", "--model", "{parity_model}", "--seed", "-1"], 2, "argument --seed: expected an int in [0, 2**32 - 1]"),
    # translate
    (["translate", "--model", "{parity_model}"], 2, "the following arguments are required: sentences"),
    (["translate", "--model", "{parity_model}", "one"], 2, "is a 'parity' model; expected a 'translation' model"),
    (["translate", "--model", "{missing}", "one"], 2, "argument --model: no such file"),
    (["translate", "--model", "{parity_model}", "--beam-width", "0", "one"], 2, "argument --beam-width: expected"),
    # chat
    (["chat"], 2, "the following arguments are required: --model"),
    (["chat", "--model", "{missing}"], 2, "argument --model: no such file"),
    (["chat", "--model", "{parity_model}"], 2, "is a 'parity' model; expected a 'dialogue' model"),
    (["train", "dialogue", "--topics", "weather"], 2, "Argument `topics` must name some of"),
    # tune
    (["tune", "nosuch"], 2, "argument recipe: invalid choice: 'nosuch'"),
    (["tune", "parity", "--max-trials", "0"], 2, "argument --max-trials: expected a positive int"),
    (["tune", "parity", "--seed", "-1"], 2, "argument --seed: expected an int in [0, 2**32 - 1]"),
    (["tune", "parity", "--tuner", "grid"], 2, "argument --tuner: invalid choice: 'grid'"),
    (["tune", "parity", "--preset", "huge"], 2, "Argument `preset` must be one of"),
    (["tune", "parity", "--directory", "{a_file}"], 2, "argument --directory: '"),
    # bench
    (["bench", "--cells", "nosuch"], 2, "argument --cells"),
    (["bench", "--repeats", "0"], 2, "argument --repeats: expected a positive int"),
    (["bench", "--shapes", "1x2"], 2, "argument --shapes"),
    (["bench", "--json", "{a_file}/sub/timings.json"], 2, "argument --json: cannot create"),
]


def expand(argv, files):
    return [item.format(**{name: str(path) for name, path in files.items()}) for item in argv]


@pytest.mark.parametrize("argv, status, expected", CASES, ids=[" ".join(case[0]) or "(nothing)" for case in CASES])
def test_bad_input_is_answered_in_one_or_two_lines_without_a_traceback(
    argv, status, expected, files, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert command_line.run_command(cli.main, "keras-rnn-lab", expand(argv, files)) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith((" ", "usage:"))]  # argparse's usage
    message = " ".join(lines)
    assert expected in message
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("keras-rnn-lab")  # the command, as typed
    assert not (tmp_path / "runs").exists()  # no run directory for input refused at the door


@pytest.mark.parametrize(
    "tf_config, expected",
    [
        ("{not json", "TF_CONFIG"),
        ('{"cluster": {}}', "TF_CONFIG"),
    ],
)
def test_a_bad_tf_config_is_a_usage_error(tf_config, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_CONFIG", tf_config)
    argv = ["train", "parity", "--preset", "tiny", "--strategy", "multi-worker"]
    assert command_line.run_command(cli.main, "keras-rnn-lab", argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith((" ", "usage:"))]  # argparse's usage
    assert "Traceback" not in err and expected in err and len(lines) == 1


def test_debug_shows_the_traceback_too(files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "sentiment", "--model", str(files["parity_model"])]
    assert command_line.run_command(cli.main, "keras-rnn-lab", argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert command_line.run_command(cli.main, "keras-rnn-lab", [*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "is a 'parity' model" in err.splitlines()[-1]
    monkeypatch.setenv(command_line.DEBUG_VARIABLE, "1")
    argv = ["train", "parity", "--preset", "tiny", "--run-dir", str(files["a_file"])]
    assert command_line.run_command(cli.main, "keras-rnn-lab", argv) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_unforeseen_error_is_one_line_with_the_way_to_its_traceback(capsys):
    def broken(argv):
        raise ZeroDivisionError("division by zero")

    assert command_line.run_command(broken, "keras-rnn-lab", []) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "keras-rnn-lab: error: ZeroDivisionError: division by zero",
        "keras-rnn-lab: (rerun with --debug, or KERAS_RNN_LAB_DEBUG=1, for the traceback)",
    ]


# Real processes: the console script and `python -m` give the same answers.  Each starts
# TensorFlow (about 10 s here): two stay in the default run, the other entry points are slow.
SLOW_PROCESS = pytest.mark.slow


@pytest.mark.parametrize(
    "command, status, expected",
    [
        pytest.param(
            ["keras-rnn-lab", "train", "parity", "--seed", "-1"],
            2,
            "keras-rnn-lab train parity: error: argument --seed",
            id="console script",
        ),
        pytest.param(
            [sys.executable, "-m", "recipes.char_lm", "--text", "/bin/ls"],
            2,
            "python -m recipes.char_lm: error: argument --text",
            id="recipe module",
        ),
        pytest.param(
            [sys.executable, "-m", "tuning.search", "parity", "--max-trials", "0"],
            2,
            "python -m tuning.search: error",
            id="tuning",
            marks=SLOW_PROCESS,
        ),
        pytest.param(
            [sys.executable, "-m", "keras_rnn_lab.benchmark", "--repeats", "0"],
            2,
            "python -m keras_rnn_lab.benchmark",
            id="benchmark",
            marks=SLOW_PROCESS,
        ),
    ],
)
def test_entry_points_exit_with_the_status_and_no_traceback(command, status, expected, tmp_path):
    if command[0] == "keras-rnn-lab":
        command = [os.path.join(os.path.dirname(sys.executable), "keras-rnn-lab"), *command[1:]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == status, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and expected in done.stderr
