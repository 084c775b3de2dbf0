"""The safety policy of a generation, as one object built at the edges and passed in.

``tenku`` (``cli.main``) and the server (``tenku.serve.settings``) build it with :meth:`Safety.from_env`;
Python callers pass their own or get the defaults (moderation on with its built-in rules, every output
watermarked and signed):

    from tenku.safety.policy import Safety
    pipe = TenkuPipeline.from_pretrained(path, safety=Safety(provenance=False))   # debugging only

``moderate(text)`` refuses a prompt (ModerationError naming the category) before any work;
``check_frames(frames)`` runs the output-frame checkers; the marked writer (:mod:`tenku.safety.writer`)
reads ``provenance`` and ``include_prompt``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

from tenku.safety import moderation
from tenku.safety.moderation import ModerationConfig, ModerationResult
from tenku.safety.provenance import Signing

FrameChecker = Callable[[object], ModerationResult]


@dataclasses.dataclass(frozen=True)
class Safety:
    """``moderation``: the prompt rules and endpoint; ``provenance``: invisible watermark and C2PA manifest on
    every output (False writes unmarked, unsigned files: for debugging only); ``include_prompt``: the prompt
    goes into the C2PA manifest; ``signing``: where the C2PA credentials and trust anchors come from;
    ``frame_checkers``: output-frame checks (frames (T, H, W, 3) uint8 ->
    ModerationResult) run in order before each piece is marked; the first refusal stops the output."""

    moderation: ModerationConfig = dataclasses.field(default_factory=ModerationConfig)
    provenance: bool = True
    include_prompt: bool = True
    signing: Signing = dataclasses.field(default_factory=Signing)
    frame_checkers: tuple[FrameChecker, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Safety":
        """The policy the environment sets: ``TENKU_MODERATION*`` (see :mod:`tenku.safety.moderation`),
        ``TENKU_PROVENANCE=0`` (unmarked outputs) and the C2PA credentials (:meth:`Signing.from_env`). Only
        the edges (CLI entry, server settings) call this."""
        env = os.environ if environ is None else environ
        provenance = env.get("TENKU_PROVENANCE", "1").lower() not in ("0", "off", "false")
        fields = {"moderation": ModerationConfig.from_env(env), "provenance": provenance,
                  "signing": Signing.from_env(env), **overrides}
        return cls(**fields)

    def replace(self, **changes) -> "Safety":
        return dataclasses.replace(self, **changes)

    def moderate(self, text: str | None, what: str = "prompt") -> ModerationResult:
        """Refuse ``text`` (ModerationError, naming the category) unless moderation allows it; ``what`` names
        the text in the refusal ("negative prompt", "expanded prompt")."""
        return moderation.ensure_allowed(text, self.moderation, what)

    def check_frames(self, frames) -> None:
        """Refuse an output (ModerationError) that a frame checker flags."""
        moderation.check_frames(frames, self.frame_checkers)
