"""Prompt moderation before any generation, and a pluggable check on output frames.

``check_prompt(text) -> ModerationResult`` decides; ``ensure_allowed(text)`` raises
:class:`ModerationError` (a :class:`tenku.errors.TenkuError`) naming the category. The CLI, the Python
pipeline and the server call ``ensure_allowed`` before they generate; a refusal is logged (logger
``tenku.safety.moderation``) with the category, the matched term and a hash of the prompt.

Categories follow common moderation APIs: ``sexual``, ``sexual/minors``, ``violence/graphic``,
``hate``, ``self-harm``, plus ``public-figures`` and ``copyrighted-characters`` (and ``custom`` for
the deny list). Rules are English and German patterns matched on a normalised prompt: case folded,
zero-width characters removed, look-alike letters (Cyrillic, Greek, full-width) mapped, accents and
umlauts spelled out, leetspeak undone, and letters separated by spaces or dots joined again.

Configuration (:class:`ModerationConfig`, or the environment): allow list (``TENKU_MODERATION_ALLOW``,
comma-separated phrases removed before matching), deny list (``TENKU_MODERATION_DENY``), and an
optional OpenAI-compatible endpoint (``TENKU_MODERATION_URL``, ``TENKU_MODERATION_API_KEY``,
``TENKU_MODERATION_MODEL``) that is asked in addition to the rules (``POST .../v1/moderations``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from tenku.errors import TenkuError
from tenku.safety import moderation_terms as terms

log = logging.getLogger(__name__)

CATEGORIES = tuple(terms.CATEGORIES) + ("custom",)

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u034f"
                                      "\u180e\u17b4\u17b5"), None)
# Look-alike letters that NFKC does not fold (Cyrillic, Greek, a few symbols) -> Latin.
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ϲ": "c", "ɑ": "a", "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ß": "ss", "æ": "ae", "œ": "oe",
    "ä": "ae", "ö": "oe", "ü": "ue",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e"})
_SPACED = re.compile(r"\b(?:[a-z][\s.\-_*~]+){2,}[a-z]\b")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).lower()
    text = text.translate(_CONFUSABLES)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text


def normalise(text: str) -> list[str]:
    """Variants of ``text`` that the patterns are matched against (plain, leetspeak undone, joined)."""
    base = _fold(text)
    variants = [base]
    # Leetspeak only inside words that mix letters and leet characters ("k1ll", "p0rn", "$ex").
    leet = re.sub(r"\S*[a-z]\S*", lambda m: m.group(0).translate(_LEET), base)
    variants.append(leet)
    variants.append(leet.replace("1", "l").replace("|", "l"))
    # joined with a leading article kept apart too ("a z e b r a" -> "a zebra")
    variants += [_SPACED.sub(lambda m: m.group(0)[:2] + m.group(0)[2:] if m.group(0)[0] not in "ai"
                             else m.group(0)[0] + " " + re.sub(r"[\s.\-_*~]+", "", m.group(0)[1:]), v)
                 for v in variants]
    out = []
    for v in variants:
        v = _SPACED.sub(lambda m: re.sub(r"[\s.\-_*~]+", "", m.group(0)), v)
        v = _REPEATS.sub(r"\1", v)
        v = re.sub(r"[^a-z0-9 ]+", " ", v)
        v = re.sub(r"\s+", " ", v).strip()
        if v not in out:
            out.append(v)
    return out


def _compile(patterns) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in patterns) + r")\b")


_RULES = {cat: _compile(p) for cat, p in terms.CATEGORIES.items()}
_MINOR = _compile(terms.MINOR)
_BENIGN = _compile(terms.BENIGN)


class ModerationUnavailableError(TenkuError):
    """The configured moderation endpoint could not give an answer; nothing is generated (fail closed)."""


class ModerationError(TenkuError):
    """A prompt (or output) was refused by moderation; ``category`` names why."""

    def __init__(self, category: str, message: str, result: "ModerationResult | None" = None):
        super().__init__(message)
        self.category = category
        self.result = result
        self.code = "moderation_blocked"


@dataclass(frozen=True)
class ModerationResult:
    allowed: bool
    category: str | None = None  # the first (most severe) category flagged
    categories: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()  # the normalised terms that matched
    source: str = "rules"  # rules | deny_list | endpoint | frames

    def to_dict(self) -> dict:
        return {"allowed": self.allowed, "category": self.category, "categories": list(self.categories),
                "matched": list(self.matched), "source": self.source}


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in os.environ.get(name, "").split(",") if t.strip())


@dataclass(frozen=True)
class ModerationConfig:
    enabled: bool = True
    categories: tuple[str, ...] = CATEGORIES  # categories that refuse
    allow: tuple[str, ...] = ()  # phrases removed before matching (e.g. a licensed character)
    deny: tuple[str, ...] = ()  # phrases that always refuse (category "custom")
    endpoint_url: str | None = None  # OpenAI-compatible moderation endpoint
    endpoint_api_key: str | None = None
    endpoint_model: str = "omni-moderation-latest"
    endpoint_timeout: float = 10.0

    @classmethod
    def from_env(cls) -> "ModerationConfig":
        return cls(enabled=os.environ.get("TENKU_MODERATION", "1") not in ("0", "off", "false"),
                   allow=_env_list("TENKU_MODERATION_ALLOW"), deny=_env_list("TENKU_MODERATION_DENY"),
                   endpoint_url=os.environ.get("TENKU_MODERATION_URL") or None,
                   endpoint_api_key=os.environ.get("TENKU_MODERATION_API_KEY") or None,
                   endpoint_model=os.environ.get("TENKU_MODERATION_MODEL", "omni-moderation-latest"))


def _phrase_pattern(phrases) -> re.Pattern | None:
    words = [r"\s+".join(re.escape(w) for w in normalise(p)[0].split()) for p in phrases if normalise(p)[0]]
    return re.compile(r"\b(?:" + "|".join(words) + r")\b") if words else None


def _rules(text: str, cfg: ModerationConfig) -> ModerationResult:
    variants = normalise(text)
    allow = _phrase_pattern(cfg.allow)
    deny = _phrase_pattern(cfg.deny)
    found: dict[str, str] = {}
    for v in variants:
        if deny is not None and (m := deny.search(v)):
            found.setdefault("custom", m.group(0))
        v = _BENIGN.sub(" ", v)
        if allow is not None:
            v = allow.sub(" ", v)
        for cat, rx in _RULES.items():
            if (m := rx.search(v)):
                found.setdefault(cat, m.group(0))
        if "sexual" in found and (m := _MINOR.search(v)):
            found.setdefault("sexual/minors", f"{found['sexual']} + {m.group(0)}")
    cats = tuple(c for c in CATEGORIES if c in found and c in cfg.categories)
    if not cats:
        return ModerationResult(True)
    source = "deny_list" if cats[0] == "custom" else "rules"
    return ModerationResult(False, cats[0], cats, tuple(found[c] for c in cats), source)


def _endpoint(text: str, cfg: ModerationConfig) -> ModerationResult:
    """Ask an OpenAI-compatible ``/v1/moderations`` endpoint (``{"results": [{"flagged", "categories"}]}``)."""
    import urllib.error
    import urllib.request

    url = cfg.endpoint_url.rstrip("/")
    if not url.endswith("/moderations"):
        url += "/moderations" if url.endswith("/v1") else "/v1/moderations"
    body = json.dumps({"input": text, "model": cfg.endpoint_model}).encode()
    headers = {"Content-Type": "application/json"}
    if cfg.endpoint_api_key:
        headers["Authorization"] = f"Bearer {cfg.endpoint_api_key}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=cfg.endpoint_timeout) as r:
            data = json.loads(r.read())
        result = data["results"][0]
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise ModerationUnavailableError(f"the moderation endpoint {url} did not answer usably ({e}); expected an "
                         "OpenAI-compatible /v1/moderations response; fix TENKU_MODERATION_URL or unset it") from None
    if not result.get("flagged"):
        return ModerationResult(True, source="endpoint")
    cats = tuple(sorted(k for k, v in (result.get("categories") or {}).items() if v)) or ("flagged",)
    return ModerationResult(False, cats[0], cats, (), "endpoint")


def check_prompt(text: str, config: ModerationConfig | None = None) -> ModerationResult:
    """Decide whether ``text`` may be generated. Rules first, then the endpoint if configured."""
    cfg = config or ModerationConfig.from_env()
    if not isinstance(text, str):
        raise TenkuError(f"a prompt must be text, got {type(text).__name__}")
    if not cfg.enabled or not text.strip():
        return ModerationResult(True, source="disabled" if not cfg.enabled else "rules")
    result = _rules(text, cfg)
    if result.allowed and cfg.endpoint_url:
        result = _endpoint(text, cfg)
    return result


def _refuse(result: ModerationResult, what: str, text: str = "") -> None:
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    log.warning("moderation refused %s: category=%s matched=%s source=%s sha256=%s", what, result.category,
                ",".join(result.matched), result.source, digest)
    detail = f" (matched {result.matched[0]!r})" if result.matched else ""
    raise ModerationError(result.category or "flagged",
                          f"{what} refused by moderation: category {result.category!r}{detail}; tenku does not "
                          "generate this kind of content; rephrase the prompt", result)


def ensure_allowed(text: str, config: ModerationConfig | None = None) -> ModerationResult:
    """:func:`check_prompt`, raising :class:`ModerationError` on refusal (and logging it)."""
    result = check_prompt(text, config)
    if not result.allowed:
        _refuse(result, "prompt", text)
    return result


# ---------------------------------------------------------------------------------------------
# Output-frame hook: a list of callables frames (T,H,W,3) uint8 -> ModerationResult. Empty by
# default (the world model draws only shapes); a real model registers an image classifier here.

FrameChecker = Callable[[object], ModerationResult]
_FRAME_CHECKERS: list[FrameChecker] = []


def register_frame_checker(fn: FrameChecker) -> FrameChecker:
    _FRAME_CHECKERS.append(fn)
    return fn


def unregister_frame_checker(fn: FrameChecker) -> None:
    if fn in _FRAME_CHECKERS:
        _FRAME_CHECKERS.remove(fn)


def check_frames(frames, raise_on_refusal: bool = True) -> ModerationResult:
    """Run the registered output-frame checkers; with none registered every output passes."""
    for fn in list(_FRAME_CHECKERS):
        result = fn(frames)
        if not result.allowed:
            if raise_on_refusal:
                _refuse(ModerationResult(False, result.category, result.categories, result.matched, "frames"),
                        "output")
            return result
    return ModerationResult(True, source="frames")

