"""The character language model recipe on tiny data."""

import dataclasses

import pytest

from keras_rnn_lab.generation import TextGenerator
from recipes import char_lm


def test_hello_preset_learns_hello(capsys):
    assert char_lm.main(["--preset", "hello"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "hello"


def test_tiny_preset_loss_falls_and_reports_bits_per_character(tmp_path):
    config = char_lm.config_for("tiny")
    model, history = char_lm.train(config, out=str(tmp_path / "tiny.keras"))
    bits = history.history["bits_per_char"]
    assert bits[-1] < bits[0] - 0.3, bits
    assert "val_bits_per_char" in history.history


def test_saved_model_reloads_and_generates_the_same_text(tmp_path):
    path = str(tmp_path / "m.keras")
    config = dataclasses.replace(char_lm.config_for("tiny"), epochs=1)
    model, _ = char_lm.train(config, out=path)
    again = char_lm.load(path)
    texts = TextGenerator(model)("From", 40, temperature=0.9, seed=5, samples=2)
    assert TextGenerator(again)("From", 40, temperature=0.9, seed=5, samples=2) == texts


def test_user_text_file_and_clear_errors(tmp_path, capsys):
    path = tmp_path / "mine.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    assert char_lm.main(["--preset", "tiny", "--text", str(path), "--epochs", "1"]) == 0
    with pytest.raises(ValueError, match="`text_path`: no such file"):
        char_lm.main(["--preset", "tiny", "--text", str(tmp_path / "missing.txt")])
    with pytest.raises(SystemExit):
        char_lm.main(["--preset", "nope"])
    # every recipe's --out is checked by the shared argparse type
    with pytest.raises(SystemExit):
        char_lm.main(["--preset", "hello", "--out", str(tmp_path / "model.h5")])
    assert "--out: expected a path ending in .keras; received" in capsys.readouterr().err
