"""char_lm's sampling command and serving endpoints: the SavedModel runs the
whole sampling loop in the graph; the TFLite and ONNX files serve one step of
the trained cell (a client samples), since a sampling loop over strings and
TensorFlow's stateless random draws has no builtin-op equivalent."""

import argparse
import importlib

import tensorflow as tf

from keras_rnn_lab import training
from keras_rnn_lab.decoding.generation import TextGenerator
from keras_rnn_lab.serving import export, numeric


def sample_command(argv):
    """`python -m recipes.char_lm sample --model M.keras [--prime ...]`: print samples of a saved model."""
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.char_lm sample"), description="Sample from a saved model."
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by training")
    parser.add_argument("--prime", default="From fairest", help="text the samples continue")
    parser.add_argument("--length", type=training.positive_int, default=500, help="characters to generate")
    parser.add_argument("--temperature", type=training.positive_float, default=0.8, help="< 1 safer, > 1 wilder")
    parser.add_argument(
        "--top-k", dest="top_k", type=training.positive_int, help="sample among the k likeliest characters only"
    )
    parser.add_argument("--samples", type=training.positive_int, default=1, help="how many samples")
    parser.add_argument("--seed", type=training.seed, default=0, help="same seed, same text")
    args = parser.parse_args(argv)
    if not args.prime:
        parser.error("argument --prime: expected some text to continue; received ''")
    with training.usage_errors(parser):  # no such file, not a char_lm model: exit 2
        generator = TextGenerator(importlib.import_module("recipes").find("char_lm").load_model(args.model))
        if args.top_k is not None and args.top_k > int(generator.vocabulary.shape[0]):
            raise ValueError(
                f"argument --top-k: expected at most the model's {int(generator.vocabulary.shape[0])} characters; "
                f"received {args.top_k}"
            )
    for text in generator(args.prime, args.length, args.temperature, args.top_k, args.seed, args.samples):
        print(text, end="\n\n")
    return 0


def serving_endpoints(model):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "generate": prime (a
    string), length, temperature and seed (scalars) -> text, the prime followed
    by `length` sampled characters: TextGenerator's whole loop inside the graph,
    so the same seed gives the same text as `sample`."""
    generator = TextGenerator(model)
    every_character = int(generator.vocabulary.shape[0])  # no top-k cut

    def generate(prime, length, temperature, seed):
        return {"text": generator.generate(prime, length, temperature, every_character, seed)[0]}

    specs = [
        tf.TensorSpec((), tf.string, name="prime"),
        tf.TensorSpec((), tf.int32, name="length"),
        tf.TensorSpec((), tf.float32, name="temperature"),
        tf.TensorSpec((), tf.int32, name="seed"),
    ]
    return {"generate": export.Endpoint(generate, specs)}


def numeric_endpoints(model):
    """The TFLite and ONNX twin (`keras_rnn_lab.serving.numeric`).  "step": token
    (batch,) int64, a character's id (vocabulary.json: id -> character, 0 the
    unknown one) and the cell's states state_h (and state_c for an LSTM),
    (batch, units) float32, zeros to begin -> logits (batch, characters) of the
    next character and new_state_h (new_state_c).  A client steps the prime's
    characters through, then samples softmax(logits / temperature) and feeds
    each sample back (the `sample` command's loop)."""
    generator = TextGenerator(model)
    cell = generator.cell
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    names = ["state_h", "state_c"][: len(sizes)]
    specs = [tf.TensorSpec((None,), tf.int64, name="token")]
    specs += [tf.TensorSpec((None, int(size)), tf.float32, name=name) for name, size in zip(names, sizes)]

    def step(token, *states):
        output, new_states = cell(generator.embedding(token), list(states), training=False)
        new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
        outputs = {"logits": generator.dense(output)}
        outputs.update({f"new_{name}": state for name, state in zip(names, new_states)})
        return outputs

    vocabulary = [token.decode("utf-8") for token in generator.vocabulary.numpy()]
    return {"step": export.Endpoint(step, specs, {numeric.VOCABULARY_FILE: vocabulary})}
