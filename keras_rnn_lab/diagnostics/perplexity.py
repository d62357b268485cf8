"""Per-token perplexity of a sequence model's teacher-forced outputs, and a unigram baseline.

    perplexity = exp(H),   H = -(1 / N) sum_{b, t: y_bt != 0} log softmax(logits_bt)[y_bt]

over every target token of the data (id 0 is padding and is not counted: N is
the number of real target tokens, so a batch's padding changes nothing).  It
is the number of equally likely words the model is as unsure as; a model that
knows nothing scores the vocabulary size.  `unigram_perplexity` is the anchor
to quote beside it: word frequencies alone, no context.

    result = teacher_forced_perplexity(model, dataset)    # dataset of (inputs, target ids) batches
    result.perplexity, result.cross_entropy, result.tokens
"""

import dataclasses
import math

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class Perplexity:
    perplexity: float  # exp(cross_entropy)
    cross_entropy: float  # mean nats per target token
    tokens: int  # target tokens scored (padding excluded)


def teacher_forced_perplexity(model, dataset, padding_id=0):
    """Perplexity of the target ids under `model`'s logits, (batch, time, vocabulary),
    over a dataset of (inputs, target ids (batch, time)) batches; ids equal to
    `padding_id` are not scored."""
    total, count = 0.0, 0
    for inputs, target_ids in dataset:
        logits = keras.ops.convert_to_numpy(model(inputs, training=False)).astype("float64")
        ids = np.asarray(target_ids)
        shifted = logits - logits.max(axis=-1, keepdims=True)  # a stable log-softmax
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        picked = np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]  # (batch, time)
        real = ids != padding_id
        total -= float(picked[real].sum())
        count += int(real.sum())
    return _perplexity(total, count)


def unigram_perplexity(train_ids, test_ids, vocabulary_size, padding_id=0):
    """Perplexity of `test_ids` under the add-one smoothed frequencies of
    `train_ids` (each an iterable of id sequences) over `vocabulary_size` ids,
    of which `padding_id` is neither counted nor predicted."""
    counts = np.ones(vocabulary_size)
    counts[padding_id] = 0.0
    for row in train_ids:
        ids = np.asarray(row, dtype=int)
        np.add.at(counts, ids[ids != padding_id], 1.0)
    log_probs = np.log(np.where(counts > 0, counts, 1.0) / counts.sum())
    test = np.concatenate([np.asarray(row, dtype=int).ravel() for row in test_ids])
    test = test[test != padding_id]
    return _perplexity(-float(log_probs[test].sum()), int(test.size))


def _perplexity(total, count):
    if count == 0:
        raise ValueError("No target tokens to score: every target id is padding.")
    return Perplexity(math.exp(total / count), total / count, count)
