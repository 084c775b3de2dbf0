"""Text normalisation for moderation: the forms of a prompt that the rules and the classifier read.

``variants(text)`` returns lower-case ASCII strings of words separated by single spaces, each a
reading of the same text that undoes one kind of evasion:

1. NFKC (full-width, mathematical and circled letters fold to plain ones); zero-width, bidi and
   soft-hyphen characters removed.
2. Confusable skeletons after UTS #39: a letter of another script that looks like a Latin letter
   (Cyrillic "о", Greek "ο", Cherokee "Ꭺ" ...) is read as that letter, from the Unicode confusables
   data that ``confusable-homoglyphs`` ships (a built-in table of the common ones without it).
3. German umlauts spelled out (ä -> ae, ö -> oe, ü -> ue, ß -> ss) and everything else transliterated
   to ASCII (``anyascii``; without it, accents are stripped), so "Flüchtlinge" and "Fluechtlinge" match.
4. Leetspeak undone inside words that mix letters and digits or symbols ("k1ll", "p0rn", "$ex"), and
   in a second reading for every digit ("5h0wn 45 4p35").
5. Letters split by spaces, dots, dashes or stars joined again ("n.a.k.e.d w.o.m.a.n"); a run where
   every letter stands alone ("k i l l a l l") is joined and split into the words of the moderation
   lexicon (:func:`segment`).
6. Letters repeated three or more times cut to two and to one ("naaaaked", "killll").
7. Lemmas (``simplemma``, English and German) so inflected forms read as their base word
   ("erschoss" -> "erschiessen", "Brüsten" -> "brust"); without it a small suffix stripper is used.

Only ``variants`` and ``fold`` are meant for callers; the rest is exposed for tests.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
                                    "\u034f\u180e\u17b4\u17b5\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
                           None)
# Used only where confusable-homoglyphs is not installed: the look-alikes seen in practice.
_FALLBACK_SKELETON = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ϲ": "c", "ɑ": "a", "ı": "i", "ո": "n", "ս": "u", "օ": "o",
}
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss"})
LEET = {"0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l", "¡": "i", "(": "c", "<": "c"}
_LEET_CHARS = re.escape("".join(LEET))
_LEET_AMBIGUOUS = {"1": "il", "|": "li", "!": "il", "6": "gb", "9": "gq"}
_MIXED = re.compile(rf"(?<![a-z0-9])(?=[a-z{_LEET_CHARS}]*[a-z])(?=[a-z{_LEET_CHARS}]*[{_LEET_CHARS}])"
                    rf"[a-z{_LEET_CHARS}]+")
_SEP = r"[\s.\-_*~·•,/\\:'`^=]"
_RUN_CHAR = rf"(?:ae|oe|ue|ss|[a-z0-9{_LEET_CHARS}])"  # an umlaut spelled out is one letter
_SINGLE_RUN = re.compile(rf"(?<![a-z0-9])(?:{_RUN_CHAR}{_SEP}+){{2,}}{_RUN_CHAR}(?![a-z0-9])")


@functools.lru_cache(maxsize=1)
def skeleton_map() -> dict[int, str]:
    """Code point -> the ASCII letter or digit it is confusable with (UTS #39 data), for non-Latin letters."""
    table: dict[int, str] = {}
    try:
        import json
        from importlib.resources import files

        data = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    except (ImportError, FileNotFoundError, OSError, ValueError):
        data = None
    if data is not None:
        for ch, entries in data.items():
            if len(ch) != 1 or ord(ch) < 128 or unicodedata.name(ch, "").startswith("LATIN"):
                continue
            targets = [e["c"] for e in entries if len(e.get("c", "")) == 1 and e["c"].isascii() and e["c"].isalnum()]
            if targets:  # prefer a lower-case letter (the skeleton is read after case folding)
                targets.sort(key=lambda c: (not c.islower(), not c.isalpha(), c))
                table[ord(ch)] = targets[0].lower()
    for ch, to in _FALLBACK_SKELETON.items():
        table.setdefault(ord(ch), to)
    return table


def _transliterate(text: str) -> str:
    try:
        from anyascii import anyascii
    except ImportError:
        anyascii = None
    text = text.translate(_GERMAN)
    if anyascii is not None:
        return anyascii(text).lower()
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()


def fold(text: str) -> str:
    """NFKC, invisible characters removed, confusable skeleton, umlauts spelled out, ASCII, lower case
    (punctuation, digits and symbols kept: the later steps read them)."""
    return _transliterate(_skeleton(text))


def _skeleton(text: str) -> str:
    """Invisible characters removed, look-alikes mapped before and after NFKC (which turns some of them,
    such as the lunate sigma, into letters that transliterate differently), lower case."""
    table = skeleton_map()
    text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE).translate(table)).translate(_INVISIBLE)
    return text.lower().translate(table)


def _words(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _unleet_word(word: str) -> str:
    """One word's leetspeak undone; an ambiguous digit ('1' = i or l) takes the reading the lexicon knows."""
    amb = [i for i, c in enumerate(word) if c in _LEET_AMBIGUOUS]
    plain = "".join(LEET.get(c, c) for c in word)
    if not amb or len(amb) > 5:
        return plain
    vocab = _vocabulary()
    best, best_len = plain, 0
    for combo in itertools.product(*(_LEET_AMBIGUOUS[word[i]] for i in amb)):
        chars = list(plain)
        for i, c in zip(amb, combo):
            chars[i] = c
        cand = "".join(chars)
        known = 99 if cand in vocab else next((n for n in range(len(cand), 3, -1) if cand[:n] in vocab), 0)
        if known > best_len:
            best, best_len = cand, known
    return best


def undo_leet(text: str, every_digit: bool = False) -> str:
    """'k1ll' -> 'kill'; with ``every_digit`` also words of digits alone ('45' -> 'as')."""
    out = _MIXED.sub(lambda m: _unleet_word(m.group(0)), text)
    if every_digit:
        out = re.sub(rf"(?<![a-z])[0-9@$!|+]+(?![a-z])", lambda m: _unleet_word(m.group(0)), out)
    return out


@functools.lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    from tenku.safety import moderation_terms as terms

    return frozenset(terms.vocabulary())


_INFLECTIONS = ("ing", "ed", "es", "s", "er", "ern", "en", "e", "n", "t", "et", "te", "ten", "in", "innen", "ung",
                "ungen", "ly")


def _known(piece: str, vocab) -> float | None:
    """The cost of a piece in :func:`segment`: 1 for a lexicon word or a number, more for a lexicon stem with
    an inflection ('execut' + 'ing'), so that two whole words win over one inflected word; None if unknown."""
    if piece in vocab or piece.isdigit():
        return 1.0
    for s in _INFLECTIONS:
        if piece.endswith(s) and len(piece) - len(s) >= 4 and piece[: -len(s)] in vocab:
            return 2.2 if len(s) > 1 else 2.4
    return None


def segment(run: str) -> str:
    """Split letters written without spaces into lexicon words where that covers them ('killalljews' ->
    'kill all jews'); letters no word covers are kept as they are."""
    vocab = _vocabulary()
    n = len(run)
    best: list[tuple[float, list[str]] | None] = [None] * (n + 1)
    best[0] = (0.0, [])
    for i in range(1, n + 1):
        for j in range(max(0, i - 24), i):
            if best[j] is None:
                continue
            piece = run[j:i]
            known = _known(piece, vocab)
            cost = best[j][0] + (known if known is not None else 2.5 * len(piece))
            if best[i] is None or cost < best[i][0]:
                best[i] = (cost, best[j][1] + [piece])
    words, glue = [], ""
    for piece in best[n][1]:
        if _known(piece, vocab) is not None:
            if glue:
                words.append(glue)
                glue = ""
            words.append(piece)
        else:
            glue += piece
    if glue:
        words.append(glue)
    return " ".join(words)


def join_split_letters(text: str) -> tuple[str, list[str]]:
    """(letters split by separators joined per word, the joined words of runs with no word break in them).

    Inside a run of single letters, the most common separator splits letters and any other (longer)
    separator splits words: 'n.a.k.e.d w.o.m.a.n' and 'n a k e d  w o m a n' -> 'naked woman'. A run
    where one separator splits everything ('k i l l a l l') is joined and returned for :func:`segment`."""
    unsplit: list[str] = []

    def join(m: re.Match) -> str:
        tokens = re.findall(rf"{_RUN_CHAR}|{_SEP}+", m.group(0))
        seps = tokens[1::2]
        intra = max(set(seps), key=seps.count)  # the separator between letters; any other one ends a word
        words, word = [], tokens[0]
        for sep, letter in zip(tokens[1::2], tokens[2::2]):
            if sep == intra:
                word += letter
            else:
                words.append(word)
                word = letter
        words.append(word)
        unsplit.extend(w for w in words if len(w) >= 4)
        return " " + " ".join(words) + " "

    return _SINGLE_RUN.sub(join, text), unsplit


def _repeats(text: str) -> tuple[str, str]:
    return re.sub(r"([a-z])\1{2,}", r"\1\1", text), re.sub(r"([a-z])\1{2,}", r"\1", text)


@functools.lru_cache(maxsize=1)
def _lemmatizer():
    try:
        import simplemma
    except ImportError:
        return None
    return simplemma


_SUFFIXES = ("innen", "ungen", "ungen", "ing", "ies", "ied", "es", "ed", "en", "er", "s", "e", "n", "t")


def _stem(word: str) -> str:
    """A small suffix stripper (English and German) for when simplemma is not installed."""
    for suf in _SUFFIXES:
        if len(word) > len(suf) + 3 and word.endswith(suf):
            return word[: -len(suf)]
    return word


@functools.lru_cache(maxsize=20000)
def lemma(word: str, lang: str = "en") -> str:
    """The base form of one lower-case word in ``lang`` ("en" or "de")."""
    if len(word) < 3:
        return word
    sm = _lemmatizer()
    if sm is None:
        return _stem(word)
    return sm.lemmatize(word, lang=lang).lower()


def language(text: str) -> str:
    """'de' or 'en', whichever more of the words of ``text`` belong to (English without simplemma)."""
    sm = _lemmatizer()
    if sm is None:
        return "en"
    scores = dict(sm.langdetect(text, lang=("en", "de")))
    return "de" if scores.get("de", 0.0) > scores.get("en", 0.0) else "en"


def lemmatise(text: str, lang: str | None = None) -> str:
    """Each word of a unicode, lower-case text replaced by its lemma (before transliteration)."""
    lang = lang or language(text)
    return re.sub(r"[^\W\d_]+", lambda m: lemma(m.group(0), lang), text)


def squashed_runs(text: str) -> list[str]:
    """The words of ``text`` that were spelled letter by letter with one separator throughout, joined and
    with leetspeak undone ('f r i e d r i c h m e r z' -> 'friedrichmerz'), for names matched inside them."""
    _, runs = join_split_letters(_transliterate(_skeleton(text)))
    return [_words(undo_leet(w, every_digit=True)).replace(" ", "") for w in runs]


def variants(text: str, lemmas: bool = True) -> list[str]:
    """The normalised readings of ``text`` (see the module docstring); the first is the plain one."""
    base = _skeleton(text)
    folded = _transliterate(base)
    out: list[str] = []

    def add(v: str) -> None:
        v = _words(v)
        if v and v not in out:
            out.append(v)

    joined, runs = join_split_letters(folded)
    vocab = _vocabulary()
    for source in dict.fromkeys((folded, joined)):
        for unleet in (lambda t: t, undo_leet, lambda t: undo_leet(t, every_digit=True)):
            t = unleet(source)
            seg = t
            if source is joined:
                for w in runs:
                    lw = _words(unleet(w))
                    if len(lw) >= 4 and lw not in vocab:
                        seg = re.sub(rf"\b{re.escape(lw)}\b", segment(lw), seg, count=1)
            for v in dict.fromkeys((t, seg)):
                add(v)
                for r in _repeats(v):
                    add(r)
    if lemmas:
        lang = language(base)
        add(_transliterate(lemmatise(base, lang)))
        readable = _words(undo_leet(joined))
        if readable and (not out or readable != out[0]):
            add(" ".join(lemma(w, lang) for w in readable.split()))
    return out
