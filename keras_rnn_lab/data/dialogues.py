"""Dialogue pairs from PyPI's `chatterbot-corpus` (1.3.3, BSD): prompt and reply text.

The corpus is a folder of YAML files per language (`chatterbot_corpus/data/
english/*.yml`, one topic each: greetings, ai, trivia, ...), each

    categories:
    - greetings
    conversations:
    - - Hello                 # a conversation: a list of turns
      - Hi
    - - Hi, How is it going?
      - Good

A conversation of n turns gives the n - 1 pairs (turn, next turn).  The files
are read from the installed package with importlib.resources (no network) and
parsed with PyYAML's `safe_load` (the corpus declares no YAML dependency).

    pairs, skipped = read_chatterbot()                    # [DialoguePair(prompt, reply, topic), ...]
    pairs, skipped = read_chatterbot(topics=["greetings", "humor"])
    available_topics()                                    # ['ai', 'botprofile', ..., 'trivia']

A conversation that is not a list of at least two strings is skipped and
counted (1.3.3's trivia.yml has one: a missing "- " merged a question and its
answer into one string).
"""

import dataclasses
import importlib.resources

from keras_rnn_lab.errors import UsageError

PACKAGE = "chatterbot_corpus"
INSTALL = "pip install chatterbot-corpus==1.3.3 pyyaml"


@dataclasses.dataclass(frozen=True)
class DialoguePair:
    prompt: str
    reply: str
    topic: str  # the file's name without .yml


def corpus_folder(language="english"):
    """The installed corpus's folder of `language` YAML files (a Traversable); a
    UsageError when the package is missing, a ValueError naming `language`."""
    try:
        root = importlib.resources.files(PACKAGE) / "data"
    except ModuleNotFoundError:
        raise UsageError(f"the dialogue corpus is not installed (no module {PACKAGE!r}): {INSTALL}") from None
    languages = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    if language not in languages:
        raise ValueError(f"Argument `corpus_language` must be one of {languages}; received {language!r}.")
    return root / language


def available_topics(language="english"):
    """The topics (file names without .yml) of the `language` corpus, sorted."""
    return sorted(entry.name[:-4] for entry in corpus_folder(language).iterdir() if entry.name.endswith(".yml"))


def read_chatterbot(language="english", topics=None):
    """([DialoguePair, ...] in file and conversation order, number of conversations
    skipped as malformed) of the `language` corpus, every topic or those in `topics`."""
    try:
        import yaml
    except ModuleNotFoundError:
        raise UsageError(f"reading the dialogue corpus needs PyYAML (no module 'yaml'): {INSTALL}") from None
    folder, available = corpus_folder(language), available_topics(language)
    chosen = available if topics is None else list(topics)
    unknown = sorted(set(chosen) - set(available))
    if unknown or not chosen:
        raise ValueError(f"Argument `topics` must name some of {available}; received {list(chosen)}.")
    pairs, skipped = [], 0
    for topic in chosen:
        document = yaml.safe_load((folder / f"{topic}.yml").read_text(encoding="utf-8")) or {}
        for conversation in document.get("conversations") or []:
            if not (isinstance(conversation, list) and len(conversation) >= 2):
                skipped += 1
                continue
            if not all(isinstance(turn, str) for turn in conversation):
                skipped += 1
                continue
            pairs += [DialoguePair(a, b, topic) for a, b in zip(conversation, conversation[1:])]
    return pairs, skipped
