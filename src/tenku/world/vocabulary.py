"""The words of the world's captions and of its prompt expander: the table of the ``"words"`` tokenizer
(:class:`tenku.config.TextEncoderConfig`) for models trained on the world."""

from __future__ import annotations

from tenku.models.text import word_pieces
from tenku.world import captions as c
from tenku.world import spec

# Words the caption and expander templates write around the phrase tables of tenku.world.captions
# (articles, verbs, prepositions); tests/test_text.py checks that world captions need nothing else.
TEMPLATE_WORDS = (
    "a", "across", "against", "an", "and", "arc", "are", "around", "as", "at", "begins", "behind",
    "bounces", "bouncing", "collides", "comes", "crosses", "drops", "dropped", "edge", "falling", "falls",
    "filmed", "floor", "frame", "glides", "goes", "gravity", "hits", "hitting", "in", "into", "is", "it",
    "leaves", "leaving", "moves", "moving", "object", "objects", "of", "off", "on", "once", "onto",
    "other", "out", "outside", "over", "paint", "painting", "pale", "passes", "passing", "rebounds",
    "rest", "rests", "scene", "sets", "shape", "shapes", "side", "single", "sits", "slides", "spans",
    "stands", "starts", "stationary", "stays", "motionless", "that", "the", "there", "thrown", "times",
    "trail", "travels", "twice", "under", "until", "view", "wall", "walls", "while", "with", "flies",
    "several", "many", "thing", "things", "bounce", "rolls", "rolling", "throw", "throws",
    ".", ",", ";", ":", "!", "?",
)



def _phrase_words(*tables) -> set[str]:
    words: set[str] = set()
    for table in tables:
        items = table.values() if isinstance(table, dict) else table
        for item in items:
            for phrase in (item if isinstance(item, (tuple, list)) else (item,)):
                words.update(word_pieces(str(phrase).lower()))
    return words


def world_vocabulary() -> tuple[str, ...]:
    """The sorted words of the world's captions: every phrase table of :mod:`tenku.world.captions` and
    :mod:`tenku.world.spec` (colours, shapes and shape nouns with plurals, sizes, directions and the
    user-style motion phrases, speeds, backgrounds, camera moves, regions, numbers, occluders) plus
    :data:`TEMPLATE_WORDS`. Store the result in ``TextEncoderConfig.vocab``: a trained encoder keeps its
    table even if the world's wording changes later."""
    words = _phrase_words(
        spec.COLORS.keys(), spec.SHAPES, spec.SHAPE_NOUNS, spec.BACKGROUNDS.keys(), spec.DIRECTIONS.keys(),
        spec.COMPASS, c.SHAPE_WORDS, c.SIZE_WORDS, c.DIRECTION_PHRASES, c.PARSE_DIRECTION_PHRASES,
        c.CAMERA_PHRASES, c.STATIC_CAMERA, c.SPEED_PHRASES, c.BACKGROUND_PHRASES, c.OCCLUDER_WORDS,
        c.REGION, c.NUMBERS, TEMPLATE_WORDS)
    nouns = _phrase_words(spec.SHAPE_NOUNS, c.SHAPE_WORDS)
    words.update(n + ("es" if n.endswith(("x", "s")) else "s") for n in nouns)
    return tuple(sorted(words))
