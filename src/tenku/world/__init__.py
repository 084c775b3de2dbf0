"""The tenku world: 2D scenes simulated with pymunk, rendered with anti-aliasing, with exact per-frame
ground truth and captions at three levels. See docs/world.md.

    from tenku.world import sample_scene, make_clip
    spec = sample_scene(0, "train", "bounce_walls")       # a SceneSpec (JSON via to_dict/from_dict)
    clip = make_clip(spec, seed=0)                        # frames (T, H, W, 3) uint8, ground_truth, captions
"""

from tenku.world.captions import caption_facts, check_caption, make_captions, parse_caption
from tenku.world.clip import Clip, make_clip, render_clip
from tenku.world.scenarios import SCENARIOS, sample_scene
from tenku.world.spec import (BACKGROUNDS, COLORS, DIRECTIONS, OOD_SIZES, OOD_SPEEDS, SHAPES, SIZES, SPEEDS,
                              ObjectSpec, SceneSpec, frames_for)
from tenku.world.splits import HELD_OUT_COMBOS, SPLITS, split_violations

__all__ = ["BACKGROUNDS", "COLORS", "DIRECTIONS", "HELD_OUT_COMBOS", "OOD_SIZES", "OOD_SPEEDS", "SCENARIOS",
           "SHAPES", "SIZES", "SPEEDS", "SPLITS", "Clip", "ObjectSpec", "SceneSpec", "WorldDataset",
           "ShardDataset", "caption_facts", "check_caption", "frames_for", "make_captions", "make_clip",
           "parse_caption", "render_clip", "sample_scene", "split_violations"]


def __getattr__(name):  # the dataset needs torch: import it only when asked for
    if name in ("WorldDataset", "ShardDataset"):  # world shards are shards: one dataset reads every kind
        from tenku.data.dataset import ShardDataset

        return ShardDataset
    raise AttributeError(f"module 'tenku.world' has no attribute {name!r}")
