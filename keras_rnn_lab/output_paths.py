"""Can an output path be written?  Asked before any work starts.

A command that will write to `--out` (a trained `model.keras`, an export
directory) asks first, so that a typo or a read-only disk is one line at the
start, not a raw OSError after minutes of training:

    check_writable_parent("runs/imdb/model.keras", "--out")            # a file
    check_writable_parent("exports/imdb", "--out", kind="directory")   # a directory

Directories missing on the way are fine (the writer creates them, like
`os.makedirs`): what must be writable is the nearest directory that exists.
Besides the permission bits, the check creates and removes one empty file
in that directory (the bits can say yes where the file system says no).  It
still cannot see a full disk or a quota; the writer reports those.
"""

import errno
import os
import tempfile

from keras_rnn_lab.errors import UsageError

KINDS = ("file", "directory")


def check_writable_parent(path, argument, kind="file"):
    """Check that `path` can be written as a new or replaced `kind`
    ("file" or "directory"); returns its absolute path.

    Raises `UsageError` (exit status 2), its message starting with
    `argument ARGUMENT:`, when
    - `path` is an existing directory and `kind="file"` ("... is a directory;
      expected the path of a file"), or exists and is not a directory and
      `kind="directory"` ("... exists and is not a directory; expected a
      directory");
    - `path` is an existing file this process may not write to ("cannot write
      to 'PATH' (Permission denied); expected a file you can write to");
    - the nearest existing ancestor of `path` is not a directory ("cannot
      create 'PATH': 'ANCESTOR' is not a directory");
    - that ancestor is a directory this process may not create entries in
      ("cannot write into 'ANCESTOR' (Permission denied); expected a directory
      you can write to", or "(Read-only file system)").
    `argument` is how the caller's user names the path: "--out" on a command
    line, "`out_dir`" for a function's argument.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"Argument `path` must be a path; received {path!r} of type {type(path).__name__}.")
    if kind not in KINDS:
        raise ValueError(f"Argument `kind` must be one of {KINDS}; received {kind!r}.")
    shown = os.fsdecode(path)  # as the user wrote it
    target = os.path.abspath(shown)
    if os.path.isdir(target):
        if kind == "file":
            raise UsageError(f"argument {argument}: {shown!r} is a directory; expected the path of a file")
    elif os.path.lexists(target):
        if kind == "directory":
            raise UsageError(f"argument {argument}: {shown!r} exists and is not a directory; expected a directory")
        if os.path.exists(target) and not _may_write(target, os.W_OK):
            raise UsageError(
                f"argument {argument}: cannot write to {shown!r} ({_denial(target)}); expected a file you can write to"
            )
    ancestor = os.path.dirname(target)
    while not os.path.lexists(ancestor):  # "/" always exists; a dangling link counts as there
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise UsageError(f"argument {argument}: cannot create {shown!r}: {ancestor!r} is not a directory")
    if not _may_write(ancestor, os.W_OK | os.X_OK):  # X: to create an entry, the directory must be searchable too
        raise UsageError(
            f"argument {argument}: cannot write into {ancestor!r} ({_denial(ancestor)}); "
            "expected a directory you can write to"
        )
    _probe(ancestor, shown, argument)
    return target


def _probe(directory, shown, argument):
    """Create and remove an empty file in `directory`: the permission bits can
    say yes where the file system says no (/proc, a root user on a read-only
    network mount), and hours of training must not end in that no."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".keras_rnn_lab-probe-", dir=directory)
    except OSError as error:
        raise UsageError(
            f"argument {argument}: cannot write {shown!r} into {directory!r} ({error.strerror or error}); "
            "expected a directory you can write to"
        ) from None
    os.close(handle)
    os.remove(probe)


def _may_write(path, mode):
    # The effective ids are the ones open() and mkdir() use (they differ from the real ones under setuid).
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def _denial(path):
    """Why `_may_write` said no, in the operating system's words."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)  # "Read-only file system": permissions would not help
    except (AttributeError, OSError):  # no statvfs (Windows), or it cannot look
        pass
    return os.strerror(errno.EACCES)  # "Permission denied"
