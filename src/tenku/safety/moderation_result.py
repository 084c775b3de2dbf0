"""What a moderation check returns, and the category names it uses: shared by the rules
(:mod:`tenku.safety.moderation`) and the trained layers (:mod:`tenku.safety.moderation_classifier`)."""

from __future__ import annotations

from dataclasses import dataclass

from tenku.safety.moderation_terms import CATEGORIES_ADVICE


def top_category(category: str) -> str:
    """'violence/graphic' -> 'violence'; 'sexual/minors' stays itself (a category of its own)."""
    return category if category == "sexual/minors" or "/" not in category else category.split("/")[0]


@dataclass(frozen=True)
class ModerationResult:
    allowed: bool
    category: str | None = None  # the most severe category flagged
    categories: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()  # the normalised words that made each rule fire
    source: str = "rules"  # rules | deny_list | classifier | profanity-check | endpoint | frames | disabled
    rules: tuple[str, ...] = ()  # which rule fired, one per category

    @property
    def advice(self) -> str:
        return advice_for(self.category)

    def to_dict(self) -> dict:
        return {"allowed": self.allowed, "category": self.category, "categories": list(self.categories),
                "matched": list(self.matched), "source": self.source, "rules": list(self.rules),
                "advice": self.advice if not self.allowed else ""}


def advice_for(category: str | None) -> str:
    if category is None:
        return ""
    return (CATEGORIES_ADVICE.get(category) or CATEGORIES_ADVICE.get(top_category(category))
            or "rephrase it without the flagged content")
