"""`python -m recipes.NAME export --model M.keras --out DIR [--format F]`.

    savedmodel (default)  TensorFlow Serving: raw inputs (strings, images), DIR/1/   (`export`)
    tflite                LiteRT, builtin ops only: numeric endpoints, DIR/model.tflite   (`tflite_export`)
    onnx                  ONNX Runtime: numeric endpoints, DIR/ENDPOINT.onnx   (`onnx_export`)

The TFLite and ONNX files serve the numeric twins of the SavedModel's
endpoints (`numeric`), with the vocabulary and label names as JSON files beside them.
"""

import argparse

from keras_rnn_lab.training.command_line import positive_int, usage_errors

FORMATS = ("savedmodel", "tflite", "onnx")


def export_command(argv, prog, load_model, serving_endpoints, numeric_endpoints=None, recipe=None):
    """Parse `argv`, load the .keras model (`load_model(path)`, which refuses
    another recipe's), export it in the chosen format; returns the path
    written (the SavedModel directory, the .tflite file, or the ONNX directory).

    serving_endpoints(model) -> name -> Endpoint (raw inputs, the SavedModel's);
    numeric_endpoints(model) -> the twins of those that take strings, or None
    where every endpoint takes numbers."""
    parser = argparse.ArgumentParser(prog=prog, description="Export a trained model for serving.")
    parser.add_argument("--model", required=True, help="a .keras file saved by training (--out)")
    parser.add_argument("--out", required=True, help="the export directory (TensorFlow Serving's base path)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="savedmodel",
        help="savedmodel (TensorFlow Serving, raw inputs), tflite (LiteRT, builtin ops only) or onnx "
        "(ONNX Runtime); tflite and onnx serve numeric endpoints (token ids in) with their vocabulary beside them",
    )
    parser.add_argument(
        "--fused-batch",
        dest="fused_batch",
        type=positive_int,
        help="tflite: make each LSTM TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM op, converted at this batch "
        "size (default: the while loop, any batch size, faster under XNNPACK on x86: see the README's table)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    if args.fused_batch is not None and args.format != "tflite":
        parser.error(f"argument --fused-batch: only for --format tflite; received --format {args.format}")
    from keras_rnn_lab.serving import export, numeric

    with usage_errors(parser):  # no such model, another recipe's model, an --out we cannot write: exit 2
        export.check_target(args.out, args.overwrite)
        if args.format == "onnx":
            from keras_rnn_lab.serving import onnx_export

            onnx_export.require_tf2onnx()  # the optional extra, before loading anything
        model = load_model(args.model)
    served = serving_endpoints(model)
    if args.format == "savedmodel":
        path = export.export_saved_model(model, served, args.out, overwrite=args.overwrite)
        print(f"exported the signatures {sorted(served)} to {path}")
        return path
    endpoints = numeric.numeric_endpoints(served, numeric_endpoints(model) if numeric_endpoints else None)
    if args.format == "tflite":
        from keras_rnn_lab.serving.tflite_export import export_tflite

        path = export_tflite(
            model, endpoints, args.out, overwrite=args.overwrite, recipe=recipe, fused_batch=args.fused_batch
        )
    else:
        from keras_rnn_lab.serving.onnx_export import export_onnx

        path = export_onnx(model, endpoints, args.out, overwrite=args.overwrite, recipe=recipe)
    print(f"exported the numeric endpoints {sorted(endpoints)} as {args.format} to {path}")
    return path
