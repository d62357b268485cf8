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

The export is written to a temporary directory beside OUT and renamed into
place: an export that fails half-way never replaces a good one, and a
non-empty OUT is only replaced with `overwrite=True`.
"""

import argparse
import dataclasses
import os
import shutil
import tempfile

import keras
import tensorflow as tf

SAVED_MODEL_VERSION = 1  # TensorFlow Serving's numbered version directory
KERAS_FILE = "model.keras"


@dataclasses.dataclass
class Endpoint:
    """A serving function and the TensorSpecs of its arguments (their names
    are the signature's input names; the dict keys `fn` returns its outputs)."""

    fn: object
    input_signature: list


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

    return Endpoint(serve, specs)


def classifier_outputs(class_names):
    """`postprocess` for a model of logits (..., classes): softmax
    probabilities, the label id (argmax, int32) and the label's name."""
    names = tf.constant([str(name) for name in class_names])

    def outputs(logits):
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": tf.nn.softmax(logits), "label_id": label_id, "label": tf.gather(names, label_id)}

    return outputs


def _input_name(tensor):
    # Keras names inputs "features" or "keras_tensor_3"; signatures want plain identifiers.
    return tensor.name.split(":")[0].replace("/", "_")


def check_target(out_dir, overwrite):
    """Refuse a non-empty `out_dir` unless `overwrite`."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"Argument `out_dir` must be a path; received {out_dir!r} of type {type(out_dir).__name__}.")
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise ValueError(f"Argument `out_dir` must be a directory; {str(out_dir)!r} is a file.")
        if os.listdir(out_dir) and not overwrite:
            raise ValueError(
                f"Argument `out_dir`: {str(out_dir)!r} exists and is not empty; pass overwrite=True "
                "(--overwrite) to replace it, or choose a new directory."
            )


def export_saved_model(model, endpoints, out_dir, overwrite=False, keras_copy=True):
    """Write `endpoints` (name -> Endpoint) of `model` as a SavedModel in
    OUT/1 (and `model` itself as OUT/model.keras); returns OUT/1.

    Nothing at `out_dir` changes until the whole export has been written.
    """
    check_target(out_dir, overwrite)
    if not endpoints:
        raise ValueError("Argument `endpoints` must name at least one serving function; received none.")
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.export-", dir=parent)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, endpoint in endpoints.items():
            archive.add_endpoint(name, endpoint.fn, input_signature=endpoint.input_signature)
        archive.write_out(os.path.join(staging, str(SAVED_MODEL_VERSION)), verbose=False)
        if keras_copy:
            model.save(os.path.join(staging, KERAS_FILE))
        _replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left if the export failed
    return os.path.join(out_dir, str(SAVED_MODEL_VERSION))


def _replace(staging, out_dir):
    """Move `staging` to `out_dir`, the old `out_dir` aside until the new one is in place."""
    old = None
    if os.path.exists(out_dir):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old-", dir=os.path.dirname(out_dir))
        os.rmdir(old)
        os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)  # put the previous export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_command(argv, prog, load_model, endpoints):
    """`python -m recipes.NAME export --model PATH --out DIR [--overwrite]`:
    load the .keras model, build its endpoints, export; returns the SavedModel path."""
    parser = argparse.ArgumentParser(prog=f"{prog} export", description="Export a trained model as a SavedModel.")
    parser.add_argument("--model", required=True, help="a .keras file saved by training (--out)")
    parser.add_argument("--out", required=True, help="the export directory (TensorFlow Serving's base path)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"argument --model: no such file: {args.model!r}")
    try:
        check_target(args.out, args.overwrite)
    except ValueError as error:
        parser.error(str(error))
    model = load_model(args.model)
    served = endpoints(model)
    path = export_saved_model(model, served, args.out, overwrite=args.overwrite)
    print(f"exported the signatures {sorted(served)} to {path}")
    return path
