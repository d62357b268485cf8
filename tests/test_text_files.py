"""A user's text files (keras_rnn_lab/data/text_files.py): every reader answers
a missing, directory, binary, latin-1 or unreadable file with one UsageError
naming the file and the argument, and reads good files as before."""

import bz2
import os

import pytest

from keras_rnn_lab.data import captions, labelled_text, sentence_pairs, text_data, text_files
from keras_rnn_lab.errors import UsageError
from recipes import char_lm, long_memory, translation
from tests.files import write_csv

# reader, the argument its messages name, and what a good file holds
READERS = {
    "text": (lambda path: text_data.load_text(text_path=path), "--text or `text_path`"),
    "csv": (lambda path: labelled_text.read_labelled_csv(path, "text", "label"), "--csv or `csv_path`"),
    "captions": (captions.read_caption_file, "--captions or `captions_file`"),
    "tsv": (sentence_pairs.read_tsv, "--tsv or `tsv_path`"),
    "trans": (sentence_pairs.read_trans, "--trans-de-en or `trans_path`"),
    "log": (long_memory._read_log, "--log"),
}


def bad_file(tmp_path, kind):
    """The path (a str) of a file no reader can take: `kind` says what is wrong with it."""
    path = tmp_path / f"bad_{kind}.txt"
    if kind == "missing":
        return str(path)
    if kind == "directory":
        path.mkdir()
    elif kind == "latin1":
        path.write_bytes("text,label\ncaf\xe9 cr\xe8me,1\n".encode("latin-1"))
    elif kind == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    elif kind == "utf16":
        path.write_bytes("text,label\nhello,1\n".encode("utf-16"))
    return str(path)


def assert_clear(error, path, argument):
    message = str(error.value)
    assert f"argument {argument}: " in message and repr(path) in message, message
    assert len(message.splitlines()) <= 2, message
    return message


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize(
    "kind, expected",
    [
        ("missing", "no such file '{path}'"),
        ("directory", "'{path}' is a directory; expected a UTF-8"),
        ("latin1", "'{path}' is not UTF-8 text (byte 0xe9 at offset 14); expected a UTF-8"),
        ("binary", "'{path}' is a binary file (NUL byte at offset 7), not text; expected a UTF-8"),
        ("utf16", "'{path}' is UTF-16 text; expected a UTF-8"),
    ],
)
def test_every_reader_names_the_file_and_the_argument(tmp_path, reader, kind, expected):
    read, argument = READERS[reader]
    path = bad_file(tmp_path, kind)
    if reader == "log" and kind == "missing":
        assert read(path) == []  # no log yet: the first run starts it
        return
    with pytest.raises(UsageError) as error:
        read(path)
    assert expected.format(path=path) in assert_clear(error, path, argument)


def test_latin1_hint_gives_the_iconv_command(tmp_path):
    path = bad_file(tmp_path, "latin1")
    with pytest.raises(UsageError) as error:
        text_files.read_text(path, "--text")
    assert (
        str(error.value).splitlines()[1] == f"convert it with: iconv -f latin1 -t utf-8 {path} > {path[:-4]}.utf8.txt"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_names_the_reason(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("hidden", encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(UsageError) as error:
            text_data.load_text(text_path=str(path))
    finally:
        path.chmod(0o600)
    message = assert_clear(error, str(path), "--text or `text_path`")
    assert "cannot read" in message and "Permission denied" in message


def test_a_permission_error_names_the_reason_even_as_root(tmp_path, monkeypatch):
    def refuse(name, mode="r"):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(text_files, "open", refuse, raising=False)  # shadows the builtin in text_files only
    path = str(tmp_path / "secret.csv")
    with pytest.raises(UsageError) as error:
        labelled_text.read_labelled_csv(path, "text", "label")
    message = assert_clear(error, path, "--csv or `csv_path`")
    assert "cannot read" in message and "(Permission denied)" in message


def test_a_path_through_a_file_names_the_reason(tmp_path):
    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    path = str(tmp_path / "plain.txt" / "inside.txt")
    with pytest.raises(UsageError) as error:
        sentence_pairs.read_tsv(path)
    assert "cannot read" in assert_clear(error, path, "--tsv or `tsv_path`")


def test_good_files_read_as_before_bom_dropped_line_ends_unified(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbfto be\r\nor not\rto be\n")
    assert text_data.load_text(text_path=str(path)) == "to be\nor not\nto be\n"
    assert text_files.read_text(path, "--x", newline="") == "to be\r\nor not\rto be\n"
    assert text_files.read_bytes(path, "--x").startswith(b"\xef\xbb\xbf")
    caption_file = tmp_path / "captions.txt"
    caption_file.write_bytes(b"\xef\xbb\xbfimage,caption\r\na.png,A dog\r\n")
    assert captions.read_caption_file(caption_file) == {"a.png": ["A dog"]}


def test_an_empty_text_file_names_the_argument(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(UsageError) as error:
        text_data.load_text(text_path=str(path))
    assert "is empty" in assert_clear(error, str(path), "--text or `text_path`")


def test_labelled_csv_bzip2_by_content_and_misnamed_bzip2(tmp_path):
    plain = write_csv(tmp_path / "plain.csv", ["text", "label"], [("good", "1"), ("bad\r\nday", "0")])
    texts, labels, _ = labelled_text.read_labelled_csv(plain, "text", "label")
    assert list(texts) == ["good", "bad\r\nday"] and list(labels) == [1, 0]  # quoted line ends kept, as csv reads
    with open(plain, "rb") as handle:
        compressed = bz2.compress(handle.read())
    for name in ("reviews.csv.bz2", "reviews.csv"):  # bzip2 is recognised by its bytes, whatever the name
        (tmp_path / name).write_bytes(compressed)
        again, labels, _ = labelled_text.read_labelled_csv(str(tmp_path / name), "text", "label")
        assert list(again) == list(texts) and list(labels) == [1, 0]
    misnamed = tmp_path / "plain.csv.bz2"
    misnamed.write_bytes(b"text,label\ngood,1\n")
    with pytest.raises(UsageError, match="is named .bz2 but is not bzip2 data"):
        labelled_text.read_labelled_csv(str(misnamed), "text", "label")
    damaged = tmp_path / "damaged.csv.bz2"
    damaged.write_bytes(compressed[:-20])
    with pytest.raises(UsageError, match="is damaged bzip2 data") as error:
        labelled_text.read_labelled_csv(str(damaged), "text", "label")
    assert_clear(error, str(damaged), "--csv or `csv_path`")


def test_labelled_csv_from_a_binary_file_object_names_its_source(tmp_path):
    path = bad_file(tmp_path, "latin1")
    with open(path, "rb") as handle, pytest.raises(UsageError) as error:
        labelled_text.read_labelled_csv(handle, "text", "label", source="mine.csv")
    assert "'mine.csv' is not UTF-8 text" in str(error.value)


def test_a_log_line_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"label": "lstm"}\nnot json\n', encoding="utf-8")
    with pytest.raises(UsageError) as error:
        long_memory._read_log(str(path))
    assert "line 2" in assert_clear(error, str(path), "--log")


def test_the_char_lm_command_refuses_a_binary_and_a_directory(tmp_path):
    for kind in ("binary", "directory", "latin1"):
        path = bad_file(tmp_path, kind)
        with pytest.raises(UsageError) as error:
            char_lm.main(["--preset", "tiny", "--text", path])
        assert_clear(error, path, "--text or `text_path`")


def test_the_translation_command_reports_a_bad_file_as_a_usage_error(tmp_path, capsys):
    path = bad_file(tmp_path, "latin1")
    with pytest.raises(SystemExit) as stop:
        translation.main(["--preset", "tiny", "--tsv", path])
    assert stop.value.code == 2
    assert f"argument --tsv or `tsv_path`: '{path}' is not UTF-8 text" in capsys.readouterr().err
