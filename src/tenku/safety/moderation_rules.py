"""Structural moderation rules over one normalised reading of a prompt.

``find(text) -> list[Hit]`` returns every rule that fires, each naming its category (OpenAI's
moderation taxonomy: ``sexual``, ``sexual/minors``, ``harassment``, ``harassment/threatening``,
``hate``, ``hate/threatening``, ``self-harm``, ``self-harm/intent``, ``self-harm/instructions``,
``violence``, ``violence/graphic``, ``illicit``, ``illicit/violent``; plus ``public-figures`` and
``copyrighted-characters``) and the words that made it fire. Rules read structure, not only words:

- sexual content, and sexual or suggestive context together with a minor (-> sexual/minors);
- a protected group in a dehumanising frame ("<group> depicted as vermin", "<Gruppe> als Ratten"),
  or a call for violence against a group;
- a self-harm method with a realistic depiction, with intent, or aimed at oneself;
- violence: an act of violence aimed at a person, and gore on its own;
- a how-to (instructions, "step by step", "Anleitung") for weapons, explosives, drugs or attacks;
- insults, mockery or threats aimed at a private person;
- the names of real public figures and of copyrighted characters.

Each category first removes its own benign look-alikes ("shooting a film", "nude lipstick", "bath
bomb", "the black king falls"), so that a benign phrase cannot hide a harmful one of another category.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from tenku.safety import moderation_names as names
from tenku.safety import moderation_terms as T


@dataclass(frozen=True)
class Hit:
    category: str
    evidence: str  # the matched words, "a + b" for a rule of two concepts
    rule: str  # which rule fired


def _rx(patterns, bounded: bool = True) -> re.Pattern:
    body = "|".join(f"(?:{p})" for p in patterns)
    return re.compile(rf"\b(?:{body})\b" if bounded else body)


@functools.lru_cache(maxsize=1)
def _compiled() -> dict[str, re.Pattern]:
    c = {k: _rx(v) for k, v in vars(T).items() if k.isupper() and isinstance(v, list)}
    c["PUBLIC_FIGURES"] = _rx(names.PUBLIC_FIGURES)
    c["CHARACTERS"] = _rx(names.CHARACTERS)
    c["SQUASHED_NAMES"] = _rx([p.replace(" ", "") for p in names.PUBLIC_FIGURES + names.CHARACTERS], bounded=False)
    return c


_ANIMALS = {"pig", "cow", "schwein", "sau", "kuh"}
_NAMING = {"a", "an", "as", "als", "ein", "eine", "you", "du", "fat", "fette", "fetten", "fetter", "dumme", "dummes",
           "dummer", "stupid", "ugly", "dirty", "disgusting", "called", "is", "ist", "bist", "like", "wie"}


def _spans(rx: re.Pattern, text: str) -> list[tuple[int, int, str]]:
    """(first word index, last word index, matched text) of every match."""
    out = []
    for m in rx.finditer(text):
        a = text.count(" ", 0, m.start())
        out.append((a, a + m.group(0).count(" "), m.group(0)))
    return out


def _near(a, b, window: int, order: bool = False):
    """The first pair (x from a, y from b) within ``window`` words (y after x when ``order``)."""
    for x in a:
        for y in b:
            gap = y[0] - x[1] if order else max(y[0] - x[1], x[0] - y[1])
            if (gap >= 0 if order else True) and gap <= window:
                return x[2], y[2]
    return None


def _strip(text: str, rx: re.Pattern) -> str:
    """``text`` with benign phrases replaced by one placeholder word each (word positions stay close)."""
    return rx.sub("x", text)


def find(text: str) -> list[Hit]:
    """Every rule that fires on one normalised reading ``text``."""
    c = _compiled()
    hits: list[Hit] = []

    def add(cat: str, evidence, rule: str) -> None:
        ev = " + ".join(evidence) if isinstance(evidence, tuple) else evidence
        hits.append(Hit(cat, ev, rule))

    def first(name: str, t: str):
        m = c[name].search(t)
        return m.group(0) if m else None

    # sexual, and sexual or suggestive context with a minor
    t = _strip(text, c["SEXUAL_BENIGN"])
    minors = _spans(c["MINOR"], t)
    if (m := first("CSAM", t)):
        add("sexual/minors", m, "explicit term")
    sexual = _spans(c["SEXUAL"], t)
    context = _spans(c["SEXUAL_CONTEXT"], t)
    if sexual:
        add("sexual", sexual[0][2], "explicit term")
        if minors:
            add("sexual/minors", (minors[0][2], sexual[0][2]), "minor + sexual content")
    strong_ctx = [s for s in context if not re.fullmatch(r"in .*bed|on .*bed|im bett|auf dem bett|underwear|"
                                                          r"unterwaesche|bikini|bra|panties|kiss\w*|kuess\w*|"
                                                          r"undress\w*|touching|strip\w*|zieht sich aus|ausgezogen",
                                                          s[2])]
    if minors and (strong_ctx or len({s[2] for s in context}) >= 2):
        add("sexual/minors", (minors[0][2], (strong_ctx or context)[0][2]), "minor + sexual context")
    if not sexual and len({s[2] for s in strong_ctx}) >= 2:
        add("sexual", " + ".join(sorted({s[2] for s in strong_ctx})[:2]), "suggestive context")

    # self-harm
    t = _strip(text, c["SELF_HARM_NOT"])
    sh = first("SELF_HARM", t)
    method = _spans(c["SELF_HARM_METHOD"], t)
    instruct = first("INSTRUCT", t)
    intent = first("SH_INTENT", t)
    if sh:
        sub = ("self-harm/instructions" if instruct else
               "self-harm/intent" if re.search(r"\b(?:i|ich|me|mich|my)\b", t) or intent else "self-harm")
        add(sub, sh, "self-harm named")
    if method:
        frame = first("REALISTIC", t) or intent or first("SELF", t)
        if frame or instruct:
            add("self-harm/instructions" if instruct else "self-harm", (method[0][2], instruct or frame),
                "self-harm method + " + ("instructions" if instruct else "realistic depiction, intent or self"))

    # violence
    t = _strip(text, c["VIOLENCE_BENIGN"])
    if (m := first("GORE", t)):
        add("violence/graphic", m, "graphic violence")
    pair = _near(_spans(c["VIOLENT_ACT"], t), _spans(c["PERSON"], t), 6)
    if pair:
        graphic = first("REALISTIC", t) if re.search(r"\b(?:blood\w*|bloody|blut\w*)\b", t) else None
        add("violence/graphic" if graphic else "violence", pair, "violent act + a person")

    # hate
    t = _strip(text, c["HATE_BENIGN"])
    if (m := first("HATE_SYMBOLS", t)):
        add("hate", m, "hate symbol or slogan")
    groups = _spans(c["GROUP"], t)
    if groups:
        strong = _near(groups, _spans(c["STRONG_DEHUMANISE"], t), 6)
        if strong:
            add("hate", strong, "group + dehumanising term")
        frame = _frame(groups, _spans(c["PORTRAY"], t), _spans(c["DEHUMANISE"], t), t)
        if frame:
            add("hate", frame, "group + dehumanising frame")
        acts = _spans(c["HATE_ACT"], t)
        pre = _near([a for a in acts if not re.match(r"should|must|sollen|muessen|raus|deserve", a[2])],
                    groups, 3, order=True)
        post = _near(groups, [a for a in acts if re.match(r"should|must|sollen|muessen|raus|deserve", a[2])],
                     4, order=True)
        if pre or post:
            add("hate/threatening", pre or post, "violence called for against a group")

    # harassment
    targets = _spans(c["HARASS_TARGET"], text)
    if (m := first("THREAT", text)):
        add("harassment/threatening", m, "threat")
    elif targets and (pair := _near(targets, _spans(c["THREAT_WORD"], text), 8)):
        add("harassment/threatening", pair, "a person + threat")
    if targets:
        you = [x for x in targets if x[2] in ("you", "u", "ya", "du", "dich", "dir")]
        other = [x for x in targets if x not in you]
        words = text.split()
        # an animal is an insult where it names the person ("called a pig", "als fette Kuh"), not "his pig"
        insults = [x for x in _spans(c["INSULT"], text) if x[2] not in _ANIMALS
                   or (x[0] > 0 and words[x[0] - 1] in _NAMING)]
        acts = _spans(c["HARASS_ACT"], text)
        pair = _near(other, insults + acts, 12) or _near(you, insults, 3, order=True)
        if pair:
            add("harassment", pair, "a person + insult or mockery")

    # illicit
    t = _strip(text, c["ILLICIT_BENIGN"])
    weapons = _spans(c["ILLICIT_WEAPON"], t)
    if (instruct := first("INSTRUCT", t)):
        obj = (weapons[0][2] if weapons else first("SPECIFIC_DRUG", t) or first("ILLICIT_ACT", t)
               or first("ATTACK_TARGET", t))
        if obj is None and (drug := first("ILLICIT_DRUG", t)) and first("DRUG_TRADE", t):
            obj = drug
        if obj:
            violent = bool(weapons) or re.search(r"terror|attack|anschlag|attentat|shoot|poison|vergift", obj)
            add("illicit/violent" if violent else "illicit", (instruct, obj), "instructions + weapon, drug or crime")
    if weapons and (make := _near(_spans(c["WEAPON_MAKE"], t), weapons, 4)):
        add("illicit/violent", make, "making a weapon or explosive")
    if (m := first("ILLICIT_STRONG", t)):
        add("illicit/violent", m, "planning an attack or crime")

    # real people and copyrighted characters
    if (m := first("PUBLIC_FIGURES", text)):
        add("public-figures", m, "a real public figure")
    if (m := first("CHARACTERS", text)):
        add("copyrighted-characters", m, "a copyrighted character")
    return hits


def find_in_squashed(run: str) -> list[Hit]:
    """Names of real people and characters inside letters written without spaces ('friedrichmerztanzt')."""
    m = _compiled()["SQUASHED_NAMES"].search(run)
    if not m:
        return []
    people = _compiled()["PUBLIC_FIGURES"].pattern.replace(" ", "").replace(r"\b", "")
    cat = "public-figures" if re.search(people, m.group(0)) else "copyrighted-characters"
    return [Hit(cat, m.group(0), "a name spelled letter by letter")]


def _frame(groups, portray, dehumanise, text: str):
    """A group put into a dehumanising frame: '<group> (are|as|depicted as|als|sind) ... <term>' with at most
    three words between the frame word and the term, none of them a verb in -ing, or 'mocking <group> as <term>'."""
    words = text.split()
    for g in groups:
        for p in portray:
            if not (0 <= p[0] - g[1] <= 4 or 0 <= g[0] - p[1] <= 3):
                continue
            for d in dehumanise:
                start = max(p[1], g[1])
                gap = d[0] - start - 1
                if 0 <= gap <= 3 and not any(w.endswith("ing") for w in words[start + 1:d[0]]):
                    return g[2], d[2]
    return None
