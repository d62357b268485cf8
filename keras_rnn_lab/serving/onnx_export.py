"""ONNX export through tf2onnx, for ONNX Runtime (and any ONNX runtime).

    OUT/
      ENDPOINT.onnx       one ONNX model per numeric endpoint (an ONNX file is one graph)
      endpoints.json      each endpoint's inputs and outputs (dtype, shape)
      labels.json, vocabulary.json, ...   what a client needs (`numeric`)
      model.keras         the trained Keras model, for continued training

tf2onnx is an optional dependency (`pip install "keras_rnn_lab[onnx]"`); it
converts each endpoint's traced function, the weights frozen in as constants,
at ONNX opset `OPSET`.  The recurrent layers' loop becomes an ONNX `Loop`.
Loading needs `onnxruntime` only:

    import onnxruntime
    session = onnxruntime.InferenceSession("OUT/classify.onnx")
    session.run(None, {"tokens": np.array([[2, 1, 2, 0]], np.int32)})
"""

import logging
import os

import tensorflow as tf

from keras_rnn_lab.cells import dropout_masks
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.layers import compiled
from keras_rnn_lab.serving import conversion, export, numeric

# Opset 17 (ONNX 1.12, 2022): what tf2onnx 1.17 targets best, and every
# onnxruntime since 1.12 runs it.
OPSET = 17


def require_tf2onnx():
    try:
        import tf2onnx
    except ImportError:
        raise UsageError(
            '--format onnx needs tf2onnx, an optional dependency: pip install "keras_rnn_lab[onnx]"'
        ) from None
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # its INFO lines narrate every rewrite
    return tf2onnx


def convert(endpoint, name, recipe=None, opset=OPSET):
    """The serialized ONNX model of `endpoint`; a ConversionError names the endpoint and the ops."""
    tf2onnx = require_tf2onnx()
    graph_def, inputs, outputs, renames = frozen_graph(endpoint)
    failure = None
    with conversion.native_output_captured() as captured:
        try:
            model_proto, _ = tf2onnx.convert.from_graph_def(
                graph_def, name=name, input_names=inputs, output_names=outputs, opset=opset, tensors_to_rename=renames
            )
        except Exception as error:
            failure = str(error)
        log = captured()
    if failure is not None:
        raise conversion.conversion_error("ONNX", recipe, name, f"{failure}\n{log}")
    # tf2onnx keeps an op it cannot map as a node of the TensorFlow op's name
    # (and says so only in its log): no ONNX runtime has such an op.
    unknown = sorted(unknown_ops(model_proto.graph))
    if unknown:
        raise conversion.conversion_error("ONNX", recipe, name, f"Unsupported ops: {', '.join(unknown)}\n{log}")
    return model_proto.SerializeToString()


def frozen_graph(endpoint):
    """(GraphDef, input tensor names, output tensor names, renames) of
    `endpoint`'s traced function with every capture frozen in as a constant;
    renames maps those tensor names to the endpoint's input and output names.

    tf2onnx's own `from_function` freezes the variables but keeps any other
    captured tensor (a constant made outside the traced function, e.g. a
    decoder's blocked-token penalty) as an extra graph input that no client
    would feed.  The freezing flags are tf2onnx's (control flow kept as
    While, not lowered to TensorList ops)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # a seed update in the graph would not convert; no custom op either (a served graph needs only TensorFlow)
    with dropout_masks.no_draws_in_exports(), compiled.plain_tensorflow_ops():
        concrete = tf.function(endpoint.fn, input_signature=endpoint.input_signature).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    inputs = [tensor.name for tensor in frozen.inputs]
    outputs = [tensor.name for tensor in frozen.outputs]
    # The flattened outputs follow the sorted keys of the returned dict (tf.nest's order).
    renames = dict(zip(inputs, [spec.name for spec in endpoint.input_signature]))
    renames.update(zip(outputs, sorted(concrete.structured_outputs)))
    return frozen.graph.as_graph_def(add_shapes=True), inputs, outputs, renames


def unknown_ops(graph):
    """The op types in `graph` (and its Loop and If bodies) that ONNX's own
    op sets do not define."""
    import onnx

    unknown = set()
    for node in graph.node:
        if not onnx.defs.has(node.op_type, node.domain or ""):
            unknown.add(node.op_type)
        for attribute in node.attribute:
            for body in [attribute.g, *attribute.graphs]:
                unknown |= unknown_ops(body)
    return unknown


def export_onnx(model, endpoints, out_dir, overwrite=False, recipe=None, keras_copy=True):
    """Write each numeric endpoint of `model` as OUT/NAME.onnx with the assets;
    returns OUT.  Nothing at `out_dir` changes unless every conversion succeeds."""
    if not endpoints:
        raise ValueError("Argument `endpoints` must name at least one serving function; received none.")
    export.check_target(out_dir, overwrite, argument="`out_dir`")
    require_tf2onnx()  # before any work: a missing extra is a usage error

    def write(staging):
        for name, endpoint in endpoints.items():
            content = convert(endpoint, name, recipe)
            with open(os.path.join(staging, f"{name}.onnx"), "wb") as stream:
                stream.write(content)
        numeric.write_assets(staging, endpoints)
        if keras_copy:
            export.save_keras_copy(model, staging)

    return export.write_atomically(out_dir, write, overwrite)
