"""TFLite export: LiteRT builtin ops only, so the plain interpreter runs it.

    OUT/
      model.tflite        one file, every numeric endpoint a signature
      endpoints.json      each signature's inputs and outputs (dtype, shape)
      labels.json, vocabulary.json, ...   what a client needs (`numeric`)
      model.keras         the trained Keras model, for continued training

The converter is told to use TFLITE_BUILTINS alone: no Flex delegate (the
stock `ai_edge_litert` interpreter has none) and no custom ops.  Our
recurrent layers' inference loop is a `tf.while_loop` of builtin ops (MatMul,
Tanh, Logistic, Select over a float mask), which becomes TFLite's WHILE.
Loading needs `ai-edge-litert` only:

    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter("OUT/model.tflite").get_signature_runner("classify")
    runner(tokens=np.array([[2, 1, 2, 0]], np.int32))["probabilities"]
"""

import contextlib
import os
import shutil

import tensorflow as tf

from keras_rnn_lab.layers import tflite_fused
from keras_rnn_lab.layers.bptt import loop
from keras_rnn_lab.serving import conversion, export, numeric

TFLITE_FILE = "model.tflite"
_SCRATCH = ".saved_model"  # inside the staging directory, removed before the rename


def convert(saved_model, signatures, recipe=None):
    """The .tflite bytes of `signatures` of the SavedModel at `saved_model`,
    builtin ops only; a ConversionError names the endpoint and the ops."""
    try:
        return _convert(saved_model, signatures)
    except conversion.ConversionError:
        raise
    except Exception as error:  # the converter's own errors carry the MLIR dump
        message = str(error)
    # Name the endpoint: convert each alone (only on failure, so only then the cost).
    for name in signatures:
        try:
            _convert(saved_model, [name])
        except Exception as error:
            raise conversion.conversion_error("TFLite (LiteRT builtin ops)", recipe, name, str(error)) from None
    raise conversion.conversion_error("TFLite (LiteRT builtin ops)", recipe, ", ".join(signatures), message)


def _convert(saved_model, signatures):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=list(signatures))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with conversion.native_output_captured() as captured:
        try:
            return converter.convert()
        except Exception as error:
            # Part of the converter's message only reaches file descriptor 2.
            raise RuntimeError(f"{error}\n{captured()}") from None


def export_tflite(model, endpoints, out_dir, overwrite=False, recipe=None, keras_copy=True, fused_batch=None):
    """Write the numeric `endpoints` (name -> Endpoint, see `numeric`) of
    `model` as OUT/model.tflite with their assets; returns the file's path.
    Nothing at `out_dir` changes unless the conversion succeeds.

    fused_batch: None for the while loop (any batch size; the faster file on
    x86 CPUs, where XNNPACK runs its matmuls), or a batch size B: every LSTM
    that can becomes TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM op
    (`keras_rnn_lab.layers.tflite_fused`), which needs the batch fixed when
    converting (the interpreter can still resize it)."""
    if not endpoints:
        raise ValueError("Argument `endpoints` must name at least one serving function; received none.")
    export.check_target(out_dir, overwrite, argument="`out_dir`")
    if fused_batch is not None:
        endpoints = {name: with_batch(endpoint, fused_batch) for name, endpoint in endpoints.items()}

    def write(staging):
        scratch = os.path.join(staging, _SCRATCH)
        # The recurrent loops traced the way TFLite converts them.
        with loop.builtin_ops_only(), tflite_fused.fused_lstm() if fused_batch else contextlib.nullcontext():
            export.write_saved_model(model, endpoints, scratch)
        content = convert(scratch, list(endpoints), recipe)
        shutil.rmtree(scratch)
        if fused_batch is not None:
            content = without_cell_clip(content)
        with open(os.path.join(staging, TFLITE_FILE), "wb") as stream:
            stream.write(content)
        numeric.write_assets(staging, endpoints)
        if keras_copy:
            export.save_keras_copy(model, staging)

    return os.path.join(export.write_atomically(out_dir, write, overwrite), TFLITE_FILE)


def with_batch(endpoint, batch):
    """`endpoint` with the batch dimension of its inputs fixed to `batch`."""
    specs = [tf.TensorSpec((batch, *spec.shape[1:]), spec.dtype, name=spec.name) for spec in endpoint.input_signature]
    return export.Endpoint(endpoint.fn, specs, endpoint.assets)


def without_cell_clip(content):
    """The .tflite `content` with cell_clip 0 (none) in every fused LSTM op:
    the converter writes 10 for a Keras LSTM, which Keras never applies."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    for subgraph in model.subgraphs:
        for operator in subgraph.operators:
            if codes[operator.opcodeIndex] == lstm:
                operator.builtinOptions.cellClip = 0.0
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_names(content):
    """The builtin op names in the .tflite `content`, e.g. ["FULLY_CONNECTED", "WHILE", ...]."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    found = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        found.add(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    return sorted(found)
