"""Numeric endpoints: what the TFLite and ONNX exports serve.

A SavedModel endpoint may take raw strings and return label names, every
lookup inside the graph (`export`).  LiteRT's builtin ops have no string
processing (StringLower, StringSplitV2, RaggedTensorToTensor, ... need the Flex
delegate the plain interpreter lacks) and ONNX Runtime's string support stops
at a few ops, so the TFLite and ONNX files serve each endpoint's *numeric
twin*: token ids in, ids, probabilities or values out.  What a client needs
to go from text to ids and back is written beside the model as plain JSON
asset files (`Endpoint.assets`: "vocabulary.json" id -> token,
"labels.json" label_id -> name), so a client tokenizes in a few lines.

    an endpoint with numeric inputs   is its own twin, less its string outputs
                                      ("label" goes; "label_id" and labels.json stay)
    an endpoint that takes strings    needs the twin its recipe writes
                                      (`numeric_endpoints`, e.g. "classify_ids")
"""

import json
import os

import tensorflow as tf

from keras_rnn_lab.serving.export import Endpoint

DESCRIPTION_FILE = "endpoints.json"  # name -> inputs and outputs (dtype, shape) of every served function
VOCABULARY_FILE = "vocabulary.json"  # id -> token
TOKENIZER_FILE = "tokenizer.json"  # how text becomes the ids (a TextVectorization's settings)


def takes_strings(endpoint):
    return any(spec.dtype == tf.string for spec in endpoint.input_signature)


def numeric_twin(endpoint):
    """`endpoint` without its string outputs; None when it takes strings."""
    if takes_strings(endpoint):
        return None

    def serve(*inputs):
        outputs = endpoint.fn(*inputs)
        return {name: value for name, value in outputs.items() if value.dtype != tf.string}

    return Endpoint(serve, endpoint.input_signature, dict(endpoint.assets))


def numeric_endpoints(serving, numeric=None):
    """name -> Endpoint with numbers in and out, for the TFLite and ONNX files.

    serving: the SavedModel's endpoints; numeric: the twins a recipe writes
    (name -> Endpoint), which replace them all, or None: then each serving
    endpoint is its own twin.  Either way string outputs are left out
    (`numeric_twin`), and an endpoint that takes strings is an error (the
    recipe's: it must write the twins)."""
    twins = {}
    for name, endpoint in (numeric or serving).items():
        twins[name] = numeric_twin(endpoint)  # string outputs (label names) go either way
        if twins[name] is None:
            raise ValueError(
                f"Endpoint {name!r} takes strings: the TFLite and ONNX exports need its numeric twin "
                "(token ids in), given as `numeric` endpoints."
            )
    return twins


def output_specs(endpoint):
    """name -> tf.TensorSpec of what `endpoint` returns (traced, not run)."""
    concrete = tf.function(endpoint.fn, input_signature=endpoint.input_signature).get_concrete_function()
    return {name: tf.TensorSpec.from_tensor(tensor) for name, tensor in concrete.structured_outputs.items()}


def description(endpoints):
    """`endpoints.json`'s content: for each endpoint its inputs and outputs,
    each as {"dtype": "int32", "shape": [null, 12]} (null: any size), and
    the asset files it reads."""

    def spec_json(spec):
        return {"dtype": spec.dtype.name, "shape": [None if size is None else int(size) for size in spec.shape]}

    described = {}
    for name, endpoint in endpoints.items():
        described[name] = {
            "inputs": {spec.name: spec_json(spec) for spec in endpoint.input_signature},
            "outputs": {output: spec_json(spec) for output, spec in output_specs(endpoint).items()},
            "assets": sorted(endpoint.assets),
        }
    return described


def write_assets(folder, endpoints):
    """Write every endpoint's asset files and `endpoints.json` into `folder`."""
    files = {}
    for name, endpoint in endpoints.items():
        for file_name, content in endpoint.assets.items():
            if files.setdefault(file_name, content) != content:
                raise ValueError(f"Endpoints disagree on the asset {file_name!r} (endpoint {name!r}).")
    files[DESCRIPTION_FILE] = description(endpoints)
    for file_name, content in files.items():
        with open(os.path.join(folder, file_name), "w", encoding="utf-8") as stream:
            json.dump(content, stream, ensure_ascii=False, indent=1)
            stream.write("\n")


def vectorizer_assets(vectorizer):
    """A `keras.layers.TextVectorization`'s vocabulary and settings as asset
    files: what a client needs to make the same ids from text."""
    config = vectorizer.get_config()
    settings = {key: config.get(key) for key in ("standardize", "split", "output_sequence_length", "ngrams")}
    if settings["standardize"] == "lower_and_strip_punctuation":
        # Keras's own pattern (keras.src.layers.preprocessing.text_vectorization).
        settings["strip_pattern"] = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
    vocabulary = [str(token) for token in vectorizer.get_vocabulary()]
    settings.update(pad_id=0, oov_id=vocabulary.index("[UNK]") if "[UNK]" in vocabulary else None)
    return {VOCABULARY_FILE: vocabulary, TOKENIZER_FILE: settings}
