"""Moderation of every text that reaches the model, before any generation, and a hook for output frames.

``check_prompt(text) -> ModerationResult`` decides; ``ensure_allowed(text, what="prompt")`` raises
:class:`ModerationError` (a :class:`tenku.errors.TenkuError`) that names the category and says what to
change. The CLI, the Python pipeline and the server call it on the prompt, the negative prompt, the
expanded prompt and the prompts of remix, extension and edit requests; the data ingest calls it on
captions that a re-captioning endpoint returns. A refusal is logged (logger ``tenku.safety.moderation``)
with the category, the rule, the matched words and a hash of the text, never the text itself.

Categories follow OpenAI's moderation taxonomy: ``sexual``, ``sexual/minors``, ``harassment`` (and
``/threatening``), ``hate`` (and ``/threatening``), ``self-harm`` (and ``/intent``, ``/instructions``),
``violence`` (and ``/graphic``), ``illicit`` (and ``/violent``), plus ``public-figures`` (no deepfakes of
real people), ``copyrighted-characters`` and ``custom`` (the deny list). Layers, in order:

1. the deny list, then rules that read structure (:mod:`tenku.safety.moderation_rules`) on every
   normalised reading of the text (:mod:`tenku.safety.normalize`: confusables, NFKC, transliteration,
   leetspeak, split letters, repeats, umlaut spellings, lemmas);
2. a linear classifier tenku trained on the train split of its labelled set
   (:mod:`tenku.safety.moderation_classifier`), and the offensive-language model of
   ``alt-profanity-check`` when it is installed (``pip install 'tenku[moderation]'``);
3. an optional OpenAI-compatible ``/v1/moderations`` endpoint.

Configuration (:class:`ModerationConfig`; :meth:`ModerationConfig.from_env` is read at the edges only):
``TENKU_MODERATION=0`` (off), ``TENKU_MODERATION_ALLOW`` (comma-separated phrases removed before
matching, e.g. a character you hold the rights to), ``TENKU_MODERATION_DENY`` (phrases that always
refuse), ``TENKU_MODERATION_CLASSIFIER=0`` (rules only), ``TENKU_MODERATION_URL``,
``TENKU_MODERATION_API_KEY`` and ``TENKU_MODERATION_MODEL`` (the endpoint, asked after the local layers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tenku.errors import TenkuError
from tenku.safety import moderation_rules as rules
from tenku.safety.moderation_result import ModerationResult, advice_for, top_category
from tenku.safety.normalize import squashed_runs, variants

log = logging.getLogger(__name__)

# Top-level categories (a sub-category such as "violence/graphic" refuses when its parent is enabled).
CATEGORIES = ("sexual/minors", "sexual", "harassment", "hate", "self-harm", "violence", "illicit",
              "public-figures", "copyrighted-characters", "custom")
# Most severe first: a prompt that several rules flag is refused under the first.
SEVERITY = ("custom", "sexual/minors", "self-harm/instructions", "self-harm/intent", "self-harm", "hate/threatening",
            "hate", "illicit/violent", "violence/graphic", "illicit", "violence", "harassment/threatening", "sexual",
            "harassment", "public-figures", "copyrighted-characters")


def normalise(text: str) -> list[str]:
    """The normalised readings of ``text`` that the rules read (see :func:`tenku.safety.normalize.variants`)."""
    return variants(text)


class ModerationUnavailableError(TenkuError):
    """The configured moderation endpoint could not give an answer; nothing is generated (fail closed)."""


class ModerationError(TenkuError):
    """A text (or an output) was refused by moderation; ``category`` names why, ``advice`` what to change."""

    def __init__(self, category: str, message: str, result: "ModerationResult | None" = None, advice: str = ""):
        super().__init__(message)
        self.category = category
        self.result = result
        self.advice = advice
        self.code = "moderation_blocked"


def _env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in env.get(name, "").split(",") if t.strip())


@dataclass(frozen=True)
class ModerationConfig:
    enabled: bool = True
    categories: tuple[str, ...] = CATEGORIES  # categories that refuse (a parent enables its sub-categories)
    allow: tuple[str, ...] = ()  # phrases removed before matching (e.g. a licensed character)
    deny: tuple[str, ...] = ()  # phrases that always refuse (category "custom")
    classifier: bool = True  # the trained classifier layers (tenku's own, and alt-profanity-check if installed)
    endpoint_url: str | None = None  # OpenAI-compatible moderation endpoint
    endpoint_api_key: str | None = None
    endpoint_model: str = "omni-moderation-latest"
    endpoint_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ModerationConfig":
        """The settings an environment mapping gives (``TENKU_MODERATION*``); the edges pass ``os.environ``
        through :meth:`tenku.safety.policy.Safety.from_env`."""
        off = ("0", "off", "false", "no")
        return cls(enabled=env.get("TENKU_MODERATION", "1").lower() not in off,
                   allow=_env_list(env, "TENKU_MODERATION_ALLOW"), deny=_env_list(env, "TENKU_MODERATION_DENY"),
                   classifier=env.get("TENKU_MODERATION_CLASSIFIER", "1").lower() not in off,
                   endpoint_url=env.get("TENKU_MODERATION_URL") or None,
                   endpoint_api_key=env.get("TENKU_MODERATION_API_KEY") or None,
                   endpoint_model=env.get("TENKU_MODERATION_MODEL", "omni-moderation-latest"))

    def refuses(self, category: str) -> bool:
        return category in self.categories or top_category(category) in self.categories


def _phrase_pattern(phrases) -> re.Pattern | None:
    words = []
    for p in phrases:
        v = variants(p, lemmas=False)
        if v:
            words.append(r"\s+".join(re.escape(w) for w in v[0].split()))
    return re.compile(r"\b(?:" + "|".join(words) + r")\b") if words else None


def _decide(found: dict[str, rules.Hit], cfg: ModerationConfig, source: str) -> ModerationResult:
    cats = sorted((c for c in found if cfg.refuses(c)), key=lambda c: SEVERITY.index(c) if c in SEVERITY else 99)
    if not cats:
        return ModerationResult(True, source=source)
    return ModerationResult(False, cats[0], tuple(cats), tuple(found[c].evidence for c in cats),
                            "deny_list" if cats[0] == "custom" else source, tuple(found[c].rule for c in cats))


def check_rules(text: str, cfg: ModerationConfig | None = None, lemmas: bool = True) -> ModerationResult:
    """The deny list and the rules alone, on every normalised reading of ``text``."""
    cfg = cfg or ModerationConfig()
    allow, deny = _phrase_pattern(cfg.allow), _phrase_pattern(cfg.deny)
    found: dict[str, rules.Hit] = {}
    readings = variants(text, lemmas=False)

    def stages():
        yield readings
        if lemmas:  # the lemmatiser loads only when the plain readings refuse nothing
            yield [v for v in variants(text) if v not in readings]

    for stage in stages():
        for v in stage:
            if deny is not None and (m := deny.search(v)):
                found.setdefault("custom", rules.Hit("custom", m.group(0), "deny list"))
            if allow is not None:
                v = allow.sub(" x ", v)
            for hit in rules.find(v):
                found.setdefault(hit.category, hit)
        result = _decide(found, cfg, "rules")
        if not result.allowed:  # a refusal needs no lemmatiser load
            return result
    squashed_deny = [variants(p, lemmas=False)[0].replace(" ", "") for p in cfg.deny]
    for run in squashed_runs(text):
        if (m := next((d for d in squashed_deny if d and d in run), None)):
            found.setdefault("custom", rules.Hit("custom", m, "deny list"))
        for hit in rules.find_in_squashed(run):
            found.setdefault(hit.category, hit)
    return _decide(found, cfg, "rules")


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
    flagged = [k for k, v in (result.get("categories") or {}).items() if v]
    cats = tuple(sorted(flagged, key=lambda c: SEVERITY.index(c) if c in SEVERITY else 99)) or ("flagged",)
    return ModerationResult(False, cats[0], cats, (), "endpoint")


def check_prompt(text: str, config: ModerationConfig | None = None) -> ModerationResult:
    """Decide whether ``text`` may reach the model: rules, then the classifiers, then the endpoint if set."""
    cfg = config or ModerationConfig()
    if not isinstance(text, str):
        raise TenkuError(f"a prompt must be text, got {type(text).__name__}")
    if not cfg.enabled or not text.strip():
        return ModerationResult(True, source="disabled" if not cfg.enabled else "rules")
    result = check_rules(text, cfg)
    if result.allowed and cfg.classifier:
        from tenku.safety import moderation_classifier as clf

        for layer in clf.layers():
            flagged = layer(text)
            if flagged is not None and cfg.refuses(flagged.category):
                return flagged
    if result.allowed and cfg.endpoint_url:
        result = _endpoint(text, cfg)
    return result


def _refuse(result: ModerationResult, what: str, text: str = "") -> None:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    log.warning("moderation refused %s: category=%s rule=%s matched=%s source=%s sha256=%s", what, result.category,
                ",".join(result.rules), ",".join(result.matched), result.source, digest)
    why = f"{result.rules[0]}: {result.matched[0]!r}" if result.rules and result.matched else result.source
    advice = advice_for(result.category)
    raise ModerationError(result.category or "flagged",
                          f"{what} refused by moderation: category {result.category!r} ({why}); to go on, {advice}",
                          result, advice)


def ensure_allowed(text: str | None, config: ModerationConfig | None = None, what: str = "prompt") -> ModerationResult:
    """:func:`check_prompt`, raising :class:`ModerationError` on refusal (and logging it). ``what`` names the
    text in the message ("negative prompt", "expanded prompt", "caption"); None and "" pass."""
    if text is None:
        return ModerationResult(True)
    result = check_prompt(text, config)
    if not result.allowed:
        _refuse(result, what, text)
    return result


# ---------------------------------------------------------------------------------------------
# Output frames: checkers are callables frames (T,H,W,3) uint8 -> ModerationResult, held by the safety
# policy (:attr:`tenku.safety.policy.Safety.frame_checkers`). None by default (the world model draws only
# shapes); a real model passes an image classifier there.

FrameChecker = Callable[[object], ModerationResult]


def check_frames(frames, checkers: tuple[FrameChecker, ...] = (), raise_on_refusal: bool = True) -> ModerationResult:
    """Run ``checkers`` on an output's frames in order; with none every output passes. A refusal raises
    ModerationError (``raise_on_refusal``) or is returned."""
    for fn in checkers:
        result = fn(frames)
        if not result.allowed:
            if raise_on_refusal:
                _refuse(ModerationResult(False, result.category, result.categories, result.matched, "frames"),
                        "output")
            return result
    return ModerationResult(True, source="frames")


_WARM = threading.Event()
_WARM_LOCK = threading.Lock()


def warm_up() -> None:
    """Load what an allowed prompt's first check loads (the lemmatiser, the profanity model) once, under a
    lock: a server calls it at start and before each check, so concurrent first requests wait for one
    load instead of each loading it (which under 50 clients took past the clients' timeouts)."""
    if _WARM.is_set():
        return
    with _WARM_LOCK:
        if not _WARM.is_set():
            check_prompt("a red ball rolls to the right", ModerationConfig())
            _WARM.set()
