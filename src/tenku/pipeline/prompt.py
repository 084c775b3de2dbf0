"""Prompt expansion: short prompts in, the caption style the model was trained on out.

A model folder names its expander in ``sample.json`` (``"expander": "world"``: the synthetic world's,
:mod:`tenku.world.expand`; ``""``: none); ``expand=True`` uses it, ``False`` turns expansion off, and an
object with ``expand(prompt, seed[, frames=]) -> (text, source)`` (or a function ``f(prompt, seed) ->
text``) replaces it. :data:`EXPANDERS` maps the names a folder may use to their classes.

:class:`ChatEnhancer` asks an OpenAI-compatible chat endpoint instead (``POST {url}/chat/completions``,
the key given by the caller; the CLI reads ``TENKU_ENHANCER_API_KEY`` or ``OPENAI_API_KEY``); on any
failure it warns and falls back to the model's expander.
"""

from __future__ import annotations

import importlib
import json
import re
import urllib.error
import urllib.request
import warnings
from typing import Any

from tenku.errors import TenkuError, TenkuWarning

# name in sample.json -> "module:class" of an expander (imported when a generation first asks for it)
EXPANDERS: dict[str, str] = {"world": "tenku.world.expand:BuiltinExpander"}


class EnhancerFallbackWarning(TenkuWarning):
    """The chat enhancer failed; the built-in expander was used instead."""


def load_expander(name: str):
    """The expander a model folder names (see :data:`EXPANDERS`), or None for ``""``."""
    if not name:
        return None
    if name not in EXPANDERS:
        raise TenkuError(f"the model folder names the prompt expander {name!r}, which this tenku does not know; "
                         f"known: {', '.join(sorted(EXPANDERS))} (or \"\" for none); fix its sample.json")
    module, _, cls = EXPANDERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


SYSTEM_PROMPT = (
    "You rewrite short video prompts into one detailed caption in a fixed style, for a text-to-video model "
    "trained on such captions. Keep every detail the user gives (colours, shapes, sizes, directions, speeds, "
    "background, camera); fill in the unspecified ones with plausible choices. Describe: how many objects and "
    "the background; for each object its size, colour and shape, where it starts and how it moves; then the "
    "camera. Plain sentences, present tense, no lists, no quotes. Reply with the caption only.\n"
    "Example: 'a red ball bouncing' -> 'One object on a stone floor. A large red ball starts in the middle left "
    "and moves to the right at a moderate speed and bounces off the walls. The camera stays still.'"
)


class ChatEnhancer:
    """Prompt enhancement by an OpenAI-compatible chat endpoint; the built-in expander on any failure."""

    def __init__(self, url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 fallback: Any = None):
        if not re.match(r"https?://", url or ""):
            raise TenkuError(f"--enhancer must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.key = api_key
        self.timeout = float(timeout)
        self.fallback = fallback or load_expander("world")
        self.name = f"chat:{model}"

    def ask(self, prompt: str, seed: int) -> str:
        body = {"model": self.model, "temperature": 0, "seed": int(seed) % 2**31, "max_tokens": 300,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]}
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(self.endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            answer = json.loads(r.read().decode("utf-8"))
        text = answer["choices"][0]["message"]["content"]
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the answer has no text")
        return " ".join(text.strip().strip('"').split())

    def expand(self, prompt: str, seed: int, frames=None) -> tuple[str, str]:
        if not prompt.strip():
            return prompt, self.name
        if frames is not None:  # the chat model cannot see the given frames: describe them instead
            text, source = self.fallback.expand(prompt, seed, frames=frames)
            return text, f"{source}; {self.name} not asked, it cannot see the frames"
        try:
            return self.ask(prompt, seed), self.name
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code}" + (" (set TENKU_ENHANCER_API_KEY or OPENAI_API_KEY)" if e.code in (401, 403)
                                         else "")
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            reason = f"cannot reach it: {getattr(e, 'reason', e)}"
        except (ValueError, KeyError, IndexError, TypeError) as e:
            reason = f"unexpected answer: {e}"
        warnings.warn(f"prompt enhancer at {self.endpoint} failed ({reason}); using the built-in expander",
                      EnhancerFallbackWarning, stacklevel=2)
        text, _ = self.fallback.expand(prompt, seed)
        return text, f"{self.fallback.name} (enhancer failed: {reason})"


def expand_prompt(prompt: str, seed: int, expand: Any = True, frames=None, default: str = "world"
                  ) -> tuple[str, str | None]:
    """(text to encode, which expander made it or None). ``expand``: True (the expander named ``default``, a
    key of :data:`EXPANDERS`, or none for ``""``), False/None (off), an
    object with ``expand(prompt, seed[, frames=]) -> (text, source)`` or a function ``f(prompt, seed) -> text``.
    ``frames``: the (H, W, 3) frame a video continues from, when frames are given: the expansion must
    describe what it shows. A custom expander that takes no ``frames`` keeps the prompt as given then."""
    if expand is None or expand is False:
        return prompt, None
    if expand is True:
        expand = load_expander(default)
        if expand is None:
            return prompt, None
    if hasattr(expand, "expand"):
        import inspect

        if frames is None:
            return expand.expand(prompt, seed)
        if "frames" in inspect.signature(expand.expand).parameters:
            return expand.expand(prompt, seed, frames=frames)
        return prompt, f"{getattr(expand, 'name', 'custom')} (frames given, it cannot read them: kept as given)"
    if callable(expand) and frames is not None:
        return prompt, f"{getattr(expand, '__name__', 'custom')} (frames given, it cannot read them: kept as given)"
    if callable(expand):
        return expand(prompt, seed), getattr(expand, "__name__", "custom")
    raise TenkuError(f"expand must be True, False, or an expander, got {expand!r}")
