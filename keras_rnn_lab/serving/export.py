"""SavedModel export: raw inputs in, final outputs out, served without this package.

TensorFlow-only (SavedModel is TensorFlow's format).  A recipe describes its
serving functions as *endpoints*: name -> `Endpoint(fn, input_signature)`,
where `fn` takes raw inputs (strings, images, arrays) and returns a dict of
named final outputs (labels, probabilities, generated text), every lookup
and loop inside the graph.  `export_saved_model` writes them as the
SavedModel's signatures (the first is also `serving_default`, which
TensorFlow Serving calls by default) into a versioned directory:

    OUT/
      1/                  the SavedModel: saved_model.pb, variables/, assets/
      model.keras         the trained Keras model, for continued training

`OUT` is what TensorFlow Serving takes as a model's base path (it serves the
highest numbered version).  Loading needs TensorFlow only:

    served = tf.saved_model.load("OUT/1")
    served.signatures["serving_default"](text=tf.constant(["a fine film"]))

The export is written to a hidden directory beside OUT (`.OUT.export-*`)
and renamed into place: an export that fails half-way (an error, Ctrl-C)
never replaces a good one and leaves nothing behind, and a non-empty OUT is
only replaced with `overwrite=True`.  OUT gets the usual mode for the umask
(0o755 under umask 022), so a server running as another user can read it.
A process killed outright (SIGKILL, SIGTERM) cleans nothing up: the next
export to OUT warns about what was left (see `_warn_about_leftovers`).
"""

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import threading
import warnings

import keras
import tensorflow as tf

from keras_rnn_lab.cells import dropout_masks
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.layers import compiled
from keras_rnn_lab.output_paths import check_writable_parent
from keras_rnn_lab.training import model_files

SAVED_MODEL_VERSION = 1  # TensorFlow Serving's numbered version directory
KERAS_FILE = "model.keras"
LABELS_FILE = "labels.json"  # label_id -> the label's name, beside a numeric export


@dataclasses.dataclass
class Endpoint:
    """A serving function and the TensorSpecs of its arguments (their names
    are the signature's input names; the dict keys `fn` returns its outputs)."""

    fn: object
    input_signature: list
    # Files a client needs beside a numeric export (TFLite, ONNX), name ->
    # JSON value: e.g. "labels.json" (label_id -> name), "vocabulary.json" (id -> token).
    assets: dict = dataclasses.field(default_factory=dict)


def array_endpoint(model, output="predictions", postprocess=None, input_names=None):
    """The endpoint of a model whose inputs are arrays: the model's own input
    specs in (batch dimension free; named `input_names`, else as the model's
    inputs), {output: model(inputs)} out, optionally through
    `postprocess(outputs) -> dict` (e.g. logits -> labels)."""
    names = input_names or [_input_name(tensor) for tensor in model.inputs]
    if len(names) != len(model.inputs):
        raise ValueError(
            f"Argument `input_names` must name the model's {len(model.inputs)} inputs; received {names!r}."
        )
    specs = [
        tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=name) for tensor, name in zip(model.inputs, names)
    ]

    def serve(*inputs):
        outputs = model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)
        return postprocess(outputs) if postprocess is not None else {output: outputs}

    return Endpoint(serve, specs, dict(getattr(postprocess, "assets", {})))


def classifier_outputs(class_names):
    """`postprocess` for a model of logits (..., classes): softmax
    probabilities, the label id (argmax, int32) and the label's name."""
    names = [str(name) for name in class_names]

    def outputs(logits):
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        # A constant of the traced graph, not a captured eager tensor: a numeric
        # twin drops "label", and tf2onnx fails on a capture that nothing reads.
        label = tf.gather(tf.constant(names), label_id)
        return {"probabilities": tf.nn.softmax(logits), "label_id": label_id, "label": label}

    outputs.assets = {LABELS_FILE: names}  # for the numeric twins' clients
    return outputs


def _input_name(tensor):
    # Keras names inputs "features" or "keras_tensor_3"; signatures want plain identifiers.
    return tensor.name.split(":")[0].replace("/", "_")


def check_target(out_dir, overwrite, argument="--out"):
    """Refuse `out_dir` before any work: a file, a non-empty directory unless
    `overwrite`, or a place this process cannot write (`UsageError`, a
    ValueError, naming `argument`)."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"Argument `out_dir` must be a path; received {out_dir!r} of type {type(out_dir).__name__}.")
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise UsageError(f"Argument `out_dir` must be a directory; {str(out_dir)!r} is a file.")
        try:
            entries = os.listdir(out_dir)
        except OSError as error:
            raise UsageError(
                f"argument {argument}: cannot read {str(out_dir)!r} ({error.strerror}); "
                "expected a directory you can read and write"
            ) from None
        if entries and not overwrite:
            raise UsageError(
                f"Argument `out_dir`: {str(out_dir)!r} exists and is not empty; pass overwrite=True "
                "(--overwrite) to replace it, or choose a new directory."
            )
    # OUT is renamed into place (and an old OUT aside) in its parent: that parent must be writable.
    check_writable_parent(out_dir, argument, kind="directory")


def export_saved_model(model, endpoints, out_dir, overwrite=False, keras_copy=True):
    """Write `endpoints` (name -> Endpoint) of `model` as a SavedModel in
    OUT/1 (and `model` itself as OUT/model.keras); returns OUT/1.

    Nothing at `out_dir` changes until the whole export has been written;
    an export that fails (or is interrupted) leaves no staging directory.
    """
    check_target(out_dir, overwrite, argument="`out_dir`")
    if not endpoints:
        raise ValueError("Argument `endpoints` must name at least one serving function; received none.")

    def write(staging):
        write_saved_model(model, endpoints, os.path.join(staging, str(SAVED_MODEL_VERSION)))
        if keras_copy:
            save_keras_copy(model, staging)

    return os.path.join(write_atomically(out_dir, write, overwrite), str(SAVED_MODEL_VERSION))


def save_keras_copy(model, folder):
    """`model` as FOLDER/model.keras, keeping its recipe record (`training.model_files`)."""
    model_files.save_model(model, os.path.join(folder, KERAS_FILE))


def write_saved_model(model, endpoints, path):
    """`endpoints` of `model` as a SavedModel at `path` (the first is also
    `serving_default`); the plain write, without the staging of `write_atomically`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    # Inference: no dropout draw, no seed update in the graph, and no custom op
    # (a served graph needs nothing but TensorFlow).
    with dropout_masks.no_draws_in_exports(), compiled.plain_tensorflow_ops():
        for name, endpoint in endpoints.items():
            archive.add_endpoint(name, endpoint.fn, input_signature=endpoint.input_signature)
    archive.write_out(path, verbose=False)


def write_atomically(out_dir, write, overwrite=False, argument="`out_dir`"):
    """Call `write(staging)` to fill a hidden staging directory beside
    `out_dir`, then rename it into place as `out_dir`; returns its absolute path.

    Every export format goes through here: nothing at `out_dir` changes until
    `write` has returned, and a `write` that fails (an error, Ctrl-C) leaves
    no staging directory behind.  A non-empty `out_dir` is only replaced with
    `overwrite`.
    """
    check_target(out_dir, overwrite, argument=argument)
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    _warn_about_leftovers(out_dir)
    staging = None
    try:
        with _interrupts_deferred():  # so that `staging` is set before a Ctrl-C can land
            staging = _make_staging_dir(out_dir)
        write(staging)
        with _interrupts_deferred():
            _replace(staging, out_dir)
    except BaseException:  # KeyboardInterrupt too: the partial export goes, OUT stays as it was
        if staging is not None:
            with _interrupts_deferred():
                _remove_tree(staging)  # gone already if only the old OUT's removal failed
        raise
    return out_dir


def _replace(staging, out_dir):
    """Move `staging` to `out_dir`, the old `out_dir` aside until the new one is in place.

    Call it with interrupts deferred: a Ctrl-C between the two renames would
    leave OUT missing and the previous export only in `.OUT.old-*`.
    """
    if not os.path.lexists(out_dir):
        os.rename(staging, out_dir)
        return
    old = _sibling(out_dir, "old")
    os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except BaseException as error:
        try:
            os.rename(old, out_dir)  # put the previous export back
        except OSError as restore_error:
            raise OSError(
                f"could not move the previous export back to {out_dir!r} ({restore_error.strerror}); "
                f"it is kept in {old!r}"
            ) from error
        raise
    _remove_tree(old)  # the new export is in place: a failure here is only a warning


def _sibling(out_dir, tag):
    # `.OUT.TAG-PID-RANDOM`: hidden, beside OUT (a rename within one directory
    # cannot cross file systems, so it is atomic), naming the process that made it.
    parent, base = os.path.split(out_dir)
    return os.path.join(parent, f".{base}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def _make_staging_dir(out_dir):
    for _ in range(100):
        staging = _sibling(out_dir, "export")
        try:
            # Mode 0o777 less the umask, as os.makedirs gives: tempfile.mkdtemp's
            # 0o700 would stay on OUT after the rename, unreadable to a server
            # running as another user.
            os.mkdir(staging)
            return staging
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused staging directory name beside {out_dir!r} after 100 tries")


def _remove_tree(path):
    """Remove the directory `path` if it is there; a failure is a warning, not
    an error, so that it neither hides the export's own error nor fails an
    export that is already in place."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        warnings.warn(f"could not remove {path!r} ({error}); remove it by hand", RuntimeWarning, stacklevel=3)


def _warn_about_leftovers(out_dir):
    """Warn about `.OUT.export-*` and `.OUT.old-*` beside `out_dir`.

    Only a process killed outright (SIGKILL, SIGTERM's default action, a
    power cut) leaves them, since every error and Ctrl-C is cleaned up.
    They are named, not removed: nothing in a name tells a dead export from
    one running now in another process or on another machine sharing the
    disk (removing its staging directory would break it), and an `.old-*`
    may hold the only copy of the previous export (killed between the two
    renames of `_replace`).  A person can tell; a heuristic could lose data.
    """
    parent, base = os.path.split(out_dir)
    try:
        names = os.listdir(parent)
    except OSError:
        return
    left = sorted(name for name in names if name.startswith((f".{base}.export-", f".{base}.old-")))
    if left:
        warnings.warn(
            f"left in {parent!r} by an export to {base!r} that was killed, or used by one still running: "
            f"{', '.join(left)} (an .old-* directory holds the export that was there before); "
            "remove them once no such export is running.",
            RuntimeWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold a Ctrl-C (SIGINT) back until the block is done, then deliver it.

    Renames half made or a tree half removed are what an interrupt would
    leave otherwise.  Python runs signal handlers in the main thread only, so
    elsewhere (or with a handler set outside Python) this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # to the handler that was there: KeyboardInterrupt by default
