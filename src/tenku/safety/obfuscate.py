"""The evasions that :mod:`tenku.safety.normalize` undoes, as functions that apply them to a text.

The tests and ``benchmarks/moderation_eval.py`` refuse every harmful prompt of the labelled set also
in each of these spellings: look-alike letters of other scripts, letters split by spaces, dots or
zero-width characters, and leetspeak.
"""

from __future__ import annotations

import random

# Latin letter -> look-alikes from other scripts (Cyrillic, Greek, Armenian, Cherokee).
CONFUSABLE = {"a": "аɑα", "c": "сϲ", "e": "её", "i": "іι", "j": "ј", "o": "оοօ", "p": "рρ", "s": "ѕ", "x": "хχ",
              "y": "уγ", "h": "һ", "d": "ԁ", "k": "κ", "n": "ո", "u": "ս", "v": "ν", "w": "ԝ", "B": "ВΒ", "H": "НΗ",
              "K": "КΚ", "M": "МΜ", "T": "ТΤ", "A": "АΑᎪ", "E": "ЕΕ", "O": "ОΟ", "P": "РΡ", "C": "СᏟ"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "b": "8", "g": "9", "l": "1"}


def confusable(text: str, seed: int = 0) -> str:
    """Every letter that has a look-alike replaced by one (the words still read the same)."""
    rng = random.Random(seed)
    return "".join(rng.choice(CONFUSABLE[c]) if c in CONFUSABLE else c for c in text)


def spaced(text: str, sep: str = " ", word_sep: str = "   ") -> str:
    """Letters of each word split by ``sep``, words by ``word_sep``: 'n a k e d   w o m a n'."""
    return word_sep.join(sep.join(w) for w in text.split())


def zero_width(text: str) -> str:
    """A zero-width space between every two letters."""
    return "\u200b".join(text)


def leet(text: str) -> str:
    """Letters replaced by digits that look like them: 'n4k3d w0m4n'."""
    return "".join(LEET.get(c, c) for c in text)


def all_variants(text: str) -> dict[str, str]:
    return {"confusable": confusable(text), "spaced": spaced(text), "dotted": spaced(text, ".", " "),
            "single-spaced": spaced(text, " ", " "), "zero-width": zero_width(text), "leetspeak": leet(text),
            "mixed": confusable(spaced(leet(text), ".", " "))}
