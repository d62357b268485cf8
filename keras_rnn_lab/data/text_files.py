"""Reading a user's text file: its text, or a line or two saying what is wrong.

Every reader of a file the user names (--text, --csv, --captions, --tsv, ...)
goes through here, so a missing file, a directory, a binary or latin-1 file
or an unreadable one is a `UsageError` naming the argument and the file,
never a traceback:

    text = read_text(path, "--text or `text_path`")        # str, newlines as "\\n"
    data = read_bytes(path, "--csv or `csv_path`")         # the raw bytes, e.g. to decompress
    text = decode_text(data, path, "--csv or `csv_path`")  # those bytes as text

    argument --text or `text_path`: no such file 'x.txt'
    argument --text or `text_path`: 'corpus' is a directory; expected a UTF-8 text file
    argument --text or `text_path`: '/bin/ls' is a binary file (NUL byte at offset 7), not text; expected ...
    argument --text or `text_path`: 'old.txt' is not UTF-8 text (byte 0xe9 at offset 1234); expected ...
    convert it with: iconv -f latin1 -t utf-8 old.txt > old.utf8.txt

A byte-order mark at the start is dropped (spreadsheets and Windows editors
write one); it is never part of the text.
"""

import codecs
import os
import shlex

from keras_rnn_lab.errors import UsageError

TEXT_FILE = "a UTF-8 text file"


def read_bytes(path, argument, expected=TEXT_FILE):
    """The bytes of the file at `path`, or a UsageError naming `argument` and the file.

    Anything that reads like a file is accepted, pipes too (`--text <(zcat a.gz)`);
    only a missing, directory or unreadable path is refused.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise UsageError(f"argument {argument}: no such file {name!r}") from None
    except IsADirectoryError:
        raise UsageError(f"argument {argument}: {name!r} is a directory; expected {expected}") from None
    except OSError as error:  # permission denied, a file used as a folder, a name too long...
        reason = error.strerror or str(error)
        raise UsageError(f"argument {argument}: cannot read {name!r} ({reason}); expected {expected}") from None


def decode_text(data, path, argument, expected=TEXT_FILE, newline=None):
    """`data` (the bytes of the file `path`) as text, or a UsageError saying why not.

    `newline` is as for `open`: None turns "\\r\\n" and "\\r" into "\\n", ""
    leaves line ends as they are (what the csv module wants).
    """
    name = os.fspath(path)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UsageError(
            f"argument {argument}: {name!r} is UTF-16 text; expected {expected}\n"
            f"convert it with: iconv -f utf-16 -t utf-8 {_converted(name)}"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UsageError(
            f"argument {argument}: {name!r} is a binary file (NUL byte at offset {nul}), not text; expected {expected}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise UsageError(
            f"argument {argument}: {name!r} is not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset}); "
            f"expected {expected}\nconvert it with: iconv -f latin1 -t utf-8 {_converted(name)}"
        ) from None
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_text(path, argument, expected=TEXT_FILE, newline=None):
    """The text of the UTF-8 file at `path` (`read_bytes`, then `decode_text`)."""
    return decode_text(read_bytes(path, argument, expected), path, argument, expected, newline)


def _converted(name):
    """`NAME > NEW` for the iconv hint: the new file beside the old, '.utf8' before the suffix."""
    stem, suffix = os.path.splitext(name)
    return f"{shlex.quote(name)} > {shlex.quote(stem + '.utf8' + suffix)}"
