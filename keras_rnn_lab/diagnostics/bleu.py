"""Corpus BLEU (Papineni et al., 2002) on token lists.

    BLEU = BP * exp(sum_n w_n log p_n),   w_n = 1 / max_order,  n = 1 .. max_order

    p_n  clipped n-gram precision over the whole corpus: for every hypothesis,
         each of its n-grams counts at most as often as it occurs in one of its
         references (the most generous), summed over the corpus, divided by
         the number of n-grams of all hypotheses
    BP   brevity penalty over the corpus: 1 if c > r, else exp(1 - r / c), with
         c the total hypothesis length and r the total of the reference lengths
         closest to each hypothesis length (the shorter on a tie)

No smoothing: a corpus without a single matching n-gram of some order scores 0,
as in the paper.  Scores are in [0, 1] (multiply by 100 for the usual scale).

    corpus_bleu([["the", "cat", "sat"]], [["the", "cat", "sat"]])       # 1.0
    corpus_bleu([[ref_a, ref_b]], [hypothesis])                          # two references

sacreBLEU (Post, 2018; the `sacrebleu` package, optional here) is the corpus
BLEU papers compare.  On the same token lists, its words joined by single
spaces (`sacrebleu_inputs`: no token may hold whitespace), it computes exactly
this score, times 100, under SACREBLEU_EQUIVALENT:

    sacrebleu.corpus_bleu(*sacrebleu_inputs(refs, hyps), tokenize="none", smooth_method="none",
                          lowercase=False, use_effective_order=False, force=True).score
        == 100 * corpus_bleu(refs, hyps)     (tests/test_bleu_sacrebleu.py: to 1e-12 relative)

(same clipping against the most generous reference, closest reference length
with the shorter on a tie, brevity penalty, and a score of 0 when an order has
no match or no n-gram at all; force only silences its "looks tokenized" warning).
Where they differ by design, with sacreBLEU's defaults (SACREBLEU_REPORTED):

    smoothing      sacreBLEU's "exp" (NIST's, mteval-v13a) gives an order with no match the
                   precision 1 / (2^k total_n), k = 1, 2, ... for each such order: a corpus
                   with no 4-gram right scores above 0 there and exactly 0 here
    tokenization   its "13a" splits punctuation off the text; ours takes the token lists as
                   given.  On number words and captions (no punctuation) the two agree
    scale          0-100 there, 0-1 here

`bleu_scores` gives both, what the translation and captioning recipes report:
ours, and sacreBLEU's with its defaults on the recipe's words joined by spaces
(on the number words and shapes-world captions that is the text itself; on
your own files it is the lower-cased, tokenized text, so compare with papers
with care), or None when sacrebleu is not installed (`sacrebleu_note` says so).
"""

import collections
import dataclasses
import math

from keras_rnn_lab._validation import check_positive_int

# sacreBLEU's settings under which its score is 100 * corpus_bleu (see the module docstring).
SACREBLEU_EQUIVALENT = dict(
    tokenize="none", smooth_method="none", lowercase=False, use_effective_order=False, force=True
)
# What the recipes report beside ours: sacreBLEU's defaults; force: our text is tokenized on purpose.
SACREBLEU_REPORTED = dict(tokenize="13a", smooth_method="exp", lowercase=False, force=True)
OURS_NOTE = "BLEU: keras_rnn_lab's (0-1, no smoothing)"


@dataclasses.dataclass(frozen=True)
class BleuDetails:
    """The parts of a corpus BLEU score."""

    bleu: float
    precisions: tuple  # p_1 .. p_max_order
    brevity_penalty: float
    hypothesis_length: int  # c
    reference_length: int  # r


def corpus_bleu(references, hypotheses, max_order=4):
    """BLEU of `hypotheses` (token lists) against `references` (one token list,
    or a list of token lists, per hypothesis); a float in [0, 1]."""
    return corpus_bleu_details(references, hypotheses, max_order).bleu


def corpus_bleu_details(references, hypotheses, max_order=4):
    """`corpus_bleu` with its precisions, brevity penalty and lengths (BleuDetails)."""
    max_order = check_positive_int("max_order", max_order)
    references, hypotheses = _checked(references, hypotheses)
    matches = [0] * max_order
    totals = [0] * max_order
    hypothesis_length = reference_length = 0
    for i, (refs, hypothesis) in enumerate(zip(references, hypotheses)):
        hypothesis = _tokens("hypotheses", i, hypothesis)
        refs = [_tokens("references", i, ref) for ref in _reference_list(i, refs)]
        hypothesis_length += len(hypothesis)
        # The reference length closest to this hypothesis's, the shorter on a tie.
        reference_length += min((abs(len(ref) - len(hypothesis)), len(ref)) for ref in refs)[1]
        for n in range(1, max_order + 1):
            counts = _ngrams(hypothesis, n)
            most = collections.Counter()
            for ref in refs:
                most |= _ngrams(ref, n)  # union keeps each n-gram's largest count
            matches[n - 1] += sum(min(count, most[gram]) for gram, count in counts.items())
            totals[n - 1] += max(len(hypothesis) - n + 1, 0)
    precisions = tuple(m / t if t else 0.0 for m, t in zip(matches, totals))
    if hypothesis_length == 0:
        brevity_penalty = 0.0
    elif hypothesis_length > reference_length:
        brevity_penalty = 1.0
    else:
        brevity_penalty = math.exp(1.0 - reference_length / hypothesis_length)
    if min(precisions) > 0:
        bleu = brevity_penalty * math.exp(sum(math.log(p) for p in precisions) / max_order)
    else:
        bleu = 0.0
    return BleuDetails(bleu, precisions, brevity_penalty, hypothesis_length, reference_length)


def sacrebleu_inputs(references, hypotheses):
    """(hypothesis strings, reference streams): our token lists as `sacrebleu.corpus_bleu`
    takes them, words joined by spaces; stream k holds every hypothesis's k-th
    reference, None where a hypothesis has fewer (sacreBLEU skips those)."""
    references, hypotheses = _checked(references, hypotheses)
    texts = [
        [" ".join(_tokens("references", i, ref)) for ref in _reference_list(i, refs)]
        for i, refs in enumerate(references)
    ]
    streams = [[refs[k] if k < len(refs) else None for refs in texts] for k in range(max(map(len, texts)))]
    return [" ".join(_tokens("hypotheses", i, hypothesis)) for i, hypothesis in enumerate(hypotheses)], streams


def sacrebleu_score(references, hypotheses, settings=None):
    """sacreBLEU's corpus BLEU (0-100) of our token lists with `settings` (keyword
    arguments of sacrebleu.corpus_bleu; default SACREBLEU_REPORTED), or None when
    the sacrebleu package is not installed."""
    try:
        import sacrebleu  # optional: imported only when asked for
    except ImportError:
        return None
    return float(
        sacrebleu.corpus_bleu(*sacrebleu_inputs(references, hypotheses), **(settings or SACREBLEU_REPORTED)).score
    )


def bleu_scores(references, hypotheses):
    """{"bleu": `corpus_bleu` (0-1), "sacrebleu": `sacrebleu_score` with sacreBLEU's
    defaults (0-100), None without the sacrebleu package}: what the recipes report."""
    return {"bleu": corpus_bleu(references, hypotheses), "sacrebleu": sacrebleu_score(references, hypotheses)}


def sacrebleu_note():
    """One line for a report under its BLEU columns: what each is, or why sacreBLEU's is missing."""
    try:
        import sacrebleu
    except ImportError:
        return f"{OURS_NOTE}; sacreBLEU: - (sacrebleu is not installed: pip install sacrebleu)"
    settings = ", ".join(f"{key}={value}" for key, value in SACREBLEU_REPORTED.items() if key != "force")
    return f"{OURS_NOTE}; sacreBLEU: sacrebleu {sacrebleu.__version__}, its defaults ({settings}), 0-100"


def _checked(references, hypotheses):
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            f"Arguments `references` and `hypotheses` must have the same length; "
            f"received {len(references)} and {len(hypotheses)}."
        )
    if not hypotheses:
        raise ValueError("Argument `hypotheses` is empty; expected at least one token list.")
    return references, hypotheses


def _ngrams(tokens, n):
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _tokens(argument, index, tokens):
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(
            f"Argument `{argument}`: entry {index} must be a list of tokens (e.g. text.split()); "
            f"received {type(tokens).__name__} {tokens!r:.60}."
        )
    return list(tokens)


def _reference_list(index, refs):
    """One reference (a token list) or several (a list of token lists)."""
    if isinstance(refs, (list, tuple)) and refs and all(isinstance(ref, (list, tuple)) for ref in refs):
        return refs
    if isinstance(refs, (list, tuple)) and refs and any(isinstance(ref, (list, tuple)) for ref in refs):
        raise TypeError(
            f"Argument `references`: entry {index} mixes tokens and token lists; expected one token list "
            f"or a list of token lists."
        )
    return [refs]
