"""Dialogue: an encoder-decoder reads a prompt and writes a reply, word by word.

Many-to-many with different lengths, the translation recipe's model on a
different task: translation's `build_model` (encoder, decoder started from
its final state, optional Luong attention), its teacher-forcing data and
its `Translator` (greedy and beam search stepping the trained decoder cell).

    prompt words -> Embedding -> encoder (LSTM | GRU) -> final state (+ attention over its outputs)
    [START] + reply words -> Embedding -> decoder -> Dense(vocabulary)

    python -m recipes.dialogue --out chat.keras                # train and report (a few minutes on 2 cores)
    python -m recipes.dialogue --topics greetings,humor,ai     # some topics only
    python -m recipes.dialogue --preset tiny                   # seconds, a smoke test
    printf 'hello\\nwhat is ai\\n' | python -m recipes.dialogue chat --model chat.keras [--beam-width 4]
    python -m recipes.dialogue export --model chat.keras --out exported/chat [--format savedmodel|tflite|onnx]

Data: the English part of PyPI's chatterbot-corpus 1.3.3 (BSD; 21 topic files,
2,306 prompt/reply pairs, 1,176 distinct, read offline from the installed package:
keras_rnn_lab.data.dialogues).  Identical pairs (tech_support repeats its
few dozen pairs many times) are kept once, and pairs with a prompt or reply
longer than `max_words` are dropped (coding.yml's code listings, up to 250
words).  Many prompts have several replies ("Tell me a joke": 30): the split
keeps every pair of one prompt (as tokens) in the same split, shuffled by
prompt with the seed, so a test prompt is never seen in training (its words
may be; a test prompt may also be some training reply's text).

Honest evaluation for a task with many right answers, on the held-out pairs:

    perplexity    of the reference replies (words and [END]) under teacher forcing: exp of the
                  mean cross-entropy, padding masked; beside it the unigram model of the training
                  replies' words (what word frequencies alone score) and the share of test words
                  outside the training vocabulary (scored as [UNK], which flatters every model)
    BLEU          corpus BLEU (ours and sacreBLEU's) of one reply per distinct test prompt against
                  ALL that prompt's test replies (multi-reference), greedy and beam search
    retrieval     the same BLEU for the reply of the most similar training prompt (cosine of
                  TF-IDF vectors): the baseline a generative model has to beat

What to expect (default preset, seed 0, two CPU cores): 7 epochs (the best
val_loss at epoch 3), about 85 s of training; test perplexity 204 against 336
for word frequencies alone, but greedy and beam replies are generic ("i"),
BLEU 0 (sacreBLEU 0.0) against 0.026 (sacreBLEU 2.6) for retrieval: on ~800
training pairs and unseen prompts, the lowest perplexity is not a good talker.
"""

import argparse
import dataclasses
import sys
import time
import warnings

import keras

from keras_rnn_lab import training
from keras_rnn_lab.data import dialogues, sentence_pairs
from keras_rnn_lab.data.sentence_pairs import tokenize
from keras_rnn_lab.diagnostics.perplexity import Perplexity
from keras_rnn_lab.training import (
    Recipe,
    add_common_arguments,
    check_positive_int,
    comma_list,
    common_overrides,
    config_from_preset,
    positive_int,
    program,
    usage_errors,
)
from recipes import translation
from recipes.parts import dialogue_report
from recipes.parts.translation_translator import SERVED_MAX_LENGTH, Translator, numeric_endpoints, serving_endpoints


@dataclasses.dataclass
class Config(translation.Config):
    """translation's Config (the same model, training and decoding fields) with the corpus's
    fields.  translation's number-word and file fields (split, number_range, language,
    train_size, validation_size, test_size, tsv_path, trans_path, tfds_name, data_dir) do not
    apply here; a file source is refused."""

    corpus_language: str = "english"  # chatterbot-corpus's data/<language>/ folder
    topics: tuple = None  # topic files (without .yml) to read; None: every one
    max_words: int = 40  # drop pairs whose prompt or reply is longer (tokens)
    # Redeclared defaults: about 1,000 training pairs, not 20,000.
    units: int = 256
    attention: bool = True  # replies pick words of the prompt up ("what is X" -> "X is ...")
    epochs: int = 60  # an upper bound: early stopping on val_loss ends runs sooner
    batch_size: int = 32  # ~30 steps an epoch on ~1,000 pairs
    learning_rate: float = 3e-3
    patience: int = 4
    dropout: float = 0.3  # on the recurrent layers' inputs: test perplexity 204 against 237 without (seed 0)
    validation_fraction: float = 0.1
    test_fraction: float = 0.15  # ~150 distinct test prompts: BLEU needs a few hundred references

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("max_words", self.max_words)
        for name in ("tsv_path", "trans_path", "tfds_name"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"Argument `{name}` is translation's: the dialogue recipe reads chatterbot-corpus "
                    f"(choose with `corpus_language` and `topics`); received {getattr(self, name)!r}."
                )
        if self.topics is not None:
            if isinstance(self.topics, str) or not all(isinstance(t, str) for t in self.topics):
                raise TypeError(
                    f"Argument `topics` must be None or a sequence of topic names; received {self.topics!r}."
                )
            self.topics = tuple(self.topics)


PRESETS = {
    # Tests: 240 pairs of every topic, a small model; about 10 s (the training loss halves).
    "tiny": dict(
        max_pairs=240,
        units=64,
        embedding_dim=32,
        epochs=10,
        patience=10,
        dropout=0.0,
        batch_size=16,
        learning_rate=1e-2,
        beam_width=2,
    ),
    "default": {},
}


# --- data, model, fit: translation's -------------------------------------------------------------
def load_data(config):
    """translation's `Data` of the corpus's distinct (prompt, reply) token lists, split by prompt."""
    pairs, skipped = dialogues.read_chatterbot(config.corpus_language, config.topics)
    distinct = {}
    for pair in pairs:
        prompt, reply = tokenize(pair.prompt), tokenize(pair.reply)
        if prompt and reply:
            distinct.setdefault((tuple(prompt), tuple(reply)), (prompt, reply))
    kept = [p for p in distinct.values() if max(map(len, p)) <= config.max_words]
    prompts, replies = [p for p, _ in kept], [r for _, r in kept]
    splits = sentence_pairs.shuffled_splits(
        prompts,
        replies,
        config.seed,
        config.validation_fraction,
        config.test_fraction,
        config.max_pairs,
        groups=[tuple(p) for p in prompts],  # every pair of one prompt in one split
    )
    topics = len(config.topics) if config.topics else len(dialogues.available_topics(config.corpus_language))
    name = (
        f"chatterbot-corpus {config.corpus_language} ({topics} topics; {len(pairs):,} pairs read, "
        f"{len(distinct):,} distinct, {len(distinct) - len(kept):,} longer than {config.max_words} words dropped"
        f"{f', {skipped} malformed conversation(s) skipped' if skipped else ''})"
    )
    return translation._with_vocabularies(name, splits, config)


def build_model(config, data):
    """translation's encoder-decoder, compiled, named dialogue_*."""
    return translation.build_model(config, data, prefix="dialogue")


fit_arguments = translation.fit_arguments  # teacher forcing, reshuffled every epoch


RECIPE = Recipe.of(
    __name__,
    count_examples=translation.RECIPE.count_examples,  # reply words and [END]
    example_unit=translation.RECIPE.example_unit,
    # The Recipe default: stop on val_loss (what the perplexity reports), keep the best epoch.
    # Cutting the learning rate on plateaus stopped runs at epoch 1: val_loss rises before it falls.
)


# --- training and evaluation -----------------------------------------------------------------------
@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    prompts: list  # the distinct test prompts (token lists)
    references: list  # per test prompt, all its test replies (lists of token lists)
    replies: dict  # "greedy" | "beam" | "retrieval" -> one reply (token list) per test prompt
    scores: dict  # the same keys -> {"exact_match" (equal to one reference), "bleu", "sacrebleu"}
    perplexity: Perplexity  # of the test replies under teacher forcing (words and [END])
    unigram: Perplexity  # the same words under the training replies' word frequencies
    unknown: float  # share of those test words outside the training vocabulary
    seconds: float  # wall time of data, model, fit
    decode_seconds: dict  # method -> wall time of replying to the test prompts
    data: translation.Data


def train(config, data=None, verbose=0):
    """Fit with teacher forcing and early stopping, then score the test split (see the module docstring)."""
    start = time.perf_counter()
    data, model, history = RECIPE.train_new_model(config, data, verbose=verbose)
    seconds = time.perf_counter() - start
    prompts, references = dialogue_report.by_prompt(*data.pairs["test"])
    translator = Translator(model, max_length=max(map(len, data.pairs["train"][1])) + 1)  # + [END]
    retrieval = dialogue_report.Retrieval(*data.pairs["train"])
    replies, decode_seconds = {}, {}
    for method, width in (("greedy", 1), ("beam", config.beam_width), ("retrieval", None)):
        tic = time.perf_counter()
        if width is None:
            replies[method] = retrieval(prompts)
        else:
            replies[method] = translator.translate_batch(
                prompts, width, length_penalty=config.length_penalty, batch_size=config.eval_batch_size
            )
        decode_seconds[method] = time.perf_counter() - tic
    scores = {method: translation.scores(references, hypotheses) for method, hypotheses in replies.items()}
    perplexity, unigram, unknown = dialogue_report.perplexities(model, data, config.eval_batch_size)
    return TrainResult(
        config, model, history.history, prompts, references, replies, scores, perplexity, unigram, unknown,
        seconds, decode_seconds, data,
    )  # fmt: skip


# --- the commands ------------------------------------------------------------------------------------
def chat_command(argv):
    """`chat --model M.keras [--beam-width N]`: a reply to every line of stdin until
    end of input, an empty line or Ctrl-C; returns the replies (token lists)."""
    parser = argparse.ArgumentParser(
        prog=program("python -m recipes.dialogue chat"),
        description="Reply to prompts read from stdin, one a line; an empty line or end of input ends the chat.",
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by training (--out)")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, default=4, help="1 = greedy")
    args = parser.parse_args(argv)
    with usage_errors(parser):  # no such file, another recipe's model: exit 2
        translator = Translator(RECIPE.load_model(args.model), max_length=SERVED_MAX_LENGTH)
    interactive = sys.stdin.isatty()
    replies = []
    with warnings.catch_warnings():
        # Keras notes a softmax over one value when a prompt is one word; its weight of 1 is right.
        warnings.filterwarnings("ignore", "You are using a softmax over axis -1", UserWarning)
        try:
            while True:
                if interactive:
                    print("> ", end="", file=sys.stderr, flush=True)  # stdout carries only the replies
                line = sys.stdin.readline()
                if not line.strip():  # "" at end of input, or an empty line
                    break
                replies.append(translator(line, args.beam_width))
                print(dialogue_report.detokenize(replies[-1]), flush=True)
        except KeyboardInterrupt:  # Ctrl-C ends the chat, not the program with a traceback
            if interactive:
                print(file=sys.stderr)
    return replies


def main(argv=None):
    """Train once, print the report (model greedy / beam, retrieval baseline); returns the TrainResult.
    `chat --model M.keras` talks with a saved model; `export` exports it (translation's endpoints)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["chat"]:
        return chat_command(argv[1:])
    if argv[:1] == ["export"]:  # signatures "translate" and "translate_beam": text -> reply
        return RECIPE.export_command(argv[1:], serving_endpoints, numeric_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.dialogue"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, help="Luong attention over the encoder")
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, help="encoder reads both ways")
    parser.add_argument(
        "--topics", type=comma_list(example="greetings,humor"), help="topic files to read (default: every one)"
    )
    parser.add_argument("--max-pairs", dest="max_pairs", type=positive_int, help="use only about N pairs")
    parser.add_argument("--max-words", dest="max_words", type=positive_int, help="drop longer prompts and replies")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, help="beams kept per prompt")
    args = parser.parse_args(argv)
    names = ("attention", "bidirectional", "topics", "max_pairs", "max_words", "beam_width")
    with usage_errors(parser):  # bad values, unknown topics, a missing corpus: exit 2 before training
        config = config_from_preset(
            Config, PRESETS, args.preset, **{n: getattr(args, n) for n in names}, **common_overrides(args)
        )
        data = load_data(config)
    result = train(config, data, verbose=training.progress_verbosity())
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    print(dialogue_report.format_report(result))
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.dialogue"))
