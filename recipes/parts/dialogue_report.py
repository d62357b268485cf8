"""dialogue's evaluation beside the model: the test pairs grouped by prompt
(every reply a reference), the retrieval baseline, the perplexities, and the
report (scores table, then a few test exchanges)."""

import re

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from keras_rnn_lab.data.sentence_pairs import END, padded
from keras_rnn_lab.diagnostics.bleu import sacrebleu_note
from keras_rnn_lab.diagnostics.perplexity import teacher_forced_perplexity, unigram_perplexity
from recipes.parts.translation_report import split_counts_and_model
from recipes.translation import teacher_forcing_dataset  # the fit's own pipeline

CLOSING = re.compile(r" ([.,!?;:%)\]}])")  # a punctuation mark that follows its word without a space


def by_prompt(prompts, replies):
    """(distinct prompts in order of first appearance, all the replies of each):
    one hypothesis per prompt, scored against every reply it has (multi-reference BLEU)."""
    grouped = {}
    for prompt, reply in zip(prompts, replies):
        grouped.setdefault(tuple(prompt), []).append(list(reply))
    return [list(prompt) for prompt in grouped], list(grouped.values())


def detokenize(tokens):
    """Token list -> text for a person: words joined by spaces, closing punctuation attached."""
    return CLOSING.sub(r"\1", " ".join(tokens))


class Retrieval:
    """The baseline: for a prompt, the reply of the most similar training prompt,
    by the cosine of TF-IDF vectors of their words (scikit-learn's; its rows
    are unit length, so the dot product is the cosine).

        retrieval = Retrieval(train_prompts, train_replies)   # token lists
        retrieval([["hello", "there"]])                       # -> [a training reply]

    A training prompt with several replies answers with the first of them (in
    training order); a prompt sharing no word with any training prompt gets
    the first training prompt's reply (every similarity is 0)."""

    def __init__(self, prompts, replies):
        self.prompts, references = by_prompt(prompts, replies)
        self.replies = [alternatives[0] for alternatives in references]
        self.vectorizer = TfidfVectorizer(analyzer=list)  # documents are token lists already
        self.matrix = self.vectorizer.fit_transform(self.prompts)  # (training prompts, words), sparse

    def nearest(self, prompts):
        """Index (into `self.prompts`) of the most similar training prompt, per prompt."""
        similarity = (self.vectorizer.transform(prompts) @ self.matrix.T).toarray()  # (prompts, training prompts)
        return similarity.argmax(axis=1)

    def __call__(self, prompts):
        return [list(self.replies[i]) for i in self.nearest(prompts)]


def perplexities(model, data, batch_size=500):
    """(the model's teacher-forced Perplexity of the test replies, the unigram
    baseline's on the same words, share of those words outside the training
    vocabulary): words and [END] scored, padding not."""
    lookup = model.get_layer("target_lookup")
    test = teacher_forcing_dataset(model, *data.pairs["test"], batch_size)

    def ids(targets):
        return lookup(padded(targets, suffix=[END]).astype(str)).numpy()  # (count, longest), 0 padding

    test_ids = ids(data.pairs["test"][1])
    unknown = float(np.mean(test_ids[test_ids != 0] == lookup.get_vocabulary().index("[UNK]")))
    unigram = unigram_perplexity(ids(data.pairs["train"][1]), test_ids, lookup.vocabulary_size())
    return teacher_forced_perplexity(model, test), unigram, unknown


def format_report(result, examples=6):
    """The scores table of dialogue's `TrainResult`, then the first `examples` test exchanges."""
    config, data = result.config, result.data
    counts, model = split_counts_and_model(config, data)
    epochs = len(result.history["loss"])
    lines = [
        data.name,
        f"{counts} pairs; {len(result.prompts):,} distinct test prompts, none seen in training; {model}",
        f"{epochs} epochs, {result.seconds:.0f} s training",
        "",
        f"{'test replies':<22}{'BLEU':>8}{'sacreBLEU':>11}{'exact':>8}{'perplexity':>12}{'seconds':>9}",
    ]
    rows = (
        ("greedy", "model greedy"),
        ("beam", f"model beam (width {config.beam_width})"),
        ("retrieval", "retrieval baseline"),
    )
    for method, label in rows:
        s = result.scores[method]
        sacre = f"{s['sacrebleu']:>11.2f}" if s.get("sacrebleu") is not None else f"{'-':>11}"
        perplexity = f"{result.perplexity.perplexity:>12.1f}" if method != "retrieval" else f"{'-':>12}"
        seconds = result.decode_seconds[method]
        lines.append(f"{label:<22}{s['bleu']:>8.4f}{sacre}{s['exact_match']:>8.3f}{perplexity}{seconds:>9.1f}")
    lines += [
        "BLEU against every test reply of the prompt; exact: the reply equals one of them. " + sacrebleu_note(),
        f"perplexity: of the {result.perplexity.tokens:,} test reply words and [END] under teacher forcing "
        f"({result.unknown:.1%} outside the training vocabulary, scored as [UNK]); word frequencies of the "
        f"training replies alone (unigram): {result.unigram.perplexity:.1f}",
    ]
    shown = min(examples, len(result.prompts))
    lines += ["", f"the first {shown} test prompts:"]
    for i in range(shown):
        lines += [f"  > {detokenize(result.prompts[i])}"]
        lines += [f"    reference  {detokenize(r)}" for r in result.references[i][:2]]
        if len(result.references[i]) > 2:
            lines += [f"    ({len(result.references[i]) - 2} more references)"]
        for method, label in (("greedy", "greedy"), ("beam", "beam"), ("retrieval", "retrieval")):
            lines += [f"    {label:<10} {detokenize(result.replies[method][i])}"]
    return "\n".join(lines)
