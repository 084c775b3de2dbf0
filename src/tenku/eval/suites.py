"""Versioned, seeded evaluation suites: lists of world scene specs with prompts and ground truth.

A suite is a :class:`SuiteConfig` (name, version, seed, clip size and three task lists); its items are
drawn with :func:`tenku.world.scenarios.sample_scene` from seeds derived from ``(suite seed, task,
split, scenario, index, attempt)``, so the same suite version is the same list of scenes everywhere.
Tasks: ``t2v`` (prompt adherence and permanence: the model makes the clip from its medium caption),
``physics`` (extension: the model continues the first ``cond_frames`` frames) and ``recon`` (VAE
reconstruction). A drawn scene enters the suite only if the parser reads its ground-truth video
perfectly (every adherence attribute right, no spurious appearance, disappearance or count error,
positions within 0.5 px; for collisions, the contact must happen after the given frames), so a
suite's ground truth scores the best value of every metric by construction; otherwise the next
attempt is drawn.
"""

from __future__ import annotations

import dataclasses
import functools
from functools import cached_property

import numpy as np

from tenku.errors import TenkuError

TASKS = ("t2v", "physics", "recon")


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """``t2v``/``physics``/``recon``: tuples of (split, scenario, number of clips)."""

    name: str
    version: int
    seed: int
    t2v: tuple[tuple[str, str, int], ...]
    physics: tuple[tuple[str, str, int], ...]
    recon: tuple[tuple[str, str, int], ...]
    width: int = 64
    height: int = 64
    fps: float = 8.0
    seconds: float = 2.0
    cond_frames: int = 5  # given frames in the physics task (1 + 4k: whole latent frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _scale(entries, k: int):
    return tuple((s, sc, n * k) for s, sc, n in entries)


# sized so that the default model (about 8 s per generated clip on 2 cores) runs it in under 10 minutes
_DEFAULT_T2V = (
    ("test_id", "linear", 4), ("test_id", "bounce_walls", 1), ("test_id", "collision", 1),
    ("test_id", "several", 1), ("test_id", "occluder", 2), ("test_id", "throw", 1), ("test_id", "trail", 1),
    ("test_id", "floor_bounce", 1), ("test_id", "pan", 1),
    ("test_comp", "linear", 3), ("test_comp", "occluder", 1), ("test_comp", "collision", 1),
    ("test_ood", "linear", 2), ("test_ood", "collision", 1),
)
_DEFAULT_PHYSICS = (
    ("test_id", "linear", 2), ("test_id", "bounce_walls", 2), ("test_id", "throw", 2),
    ("test_id", "floor_bounce", 1), ("test_id", "collision", 2), ("test_id", "occluder", 1),
    ("test_ood", "linear", 2), ("test_ood", "bounce_walls", 1), ("test_ood", "throw", 2),
    ("test_ood", "collision", 2),
)
_DEFAULT_RECON = (("test_id", "several", 3), ("test_id", "trail", 1), ("test_id", "pan", 2))

SUITES: dict[str, SuiteConfig] = {s.name: s for s in (
    SuiteConfig("smoke", 1, 1234,
                t2v=(("test_id", "linear", 1), ("test_comp", "occluder", 1)),
                physics=(("test_id", "collision", 1), ("test_ood", "throw", 1)),
                recon=(("test_id", "linear", 1),)),
    SuiteConfig("default", 2, 2024, t2v=_DEFAULT_T2V, physics=_DEFAULT_PHYSICS, recon=_DEFAULT_RECON),
    SuiteConfig("full", 2, 4096, t2v=_scale(_DEFAULT_T2V, 5), physics=_scale(_DEFAULT_PHYSICS, 5),
                recon=_scale(_DEFAULT_RECON, 5)),
)}


@dataclasses.dataclass
class SuiteItem:
    """One clip of a suite; the ground-truth video and record are rendered on first use."""

    id: str
    task: str
    split: str
    scenario: str
    spec: dict
    seed: int
    prompt: str
    facts: dict
    cond_frames: int

    @cached_property
    def clip(self):
        from tenku.world.clip import make_clip
        from tenku.world.spec import SceneSpec

        return make_clip(SceneSpec.from_dict(self.spec), self.seed)

    @property
    def frames(self) -> np.ndarray:
        return self.clip.frames

    @property
    def ground_truth(self) -> dict:
        return self.clip.ground_truth


def default_parser():
    """The object parser with the world's palette, floors and occluder shades."""
    from tenku.eval.parser import ObjectParser
    from tenku.world.spec import BACKGROUNDS, COLORS, OCCLUDER_RGB

    ignore = [v["rgb"] for v in BACKGROUNDS.values()] + [v["rgb2"] for v in BACKGROUNDS.values() if "rgb2" in v]
    ignore += list(OCCLUDER_RGB.values())
    return ObjectParser(COLORS, ignore=ignore)


def _reads_perfectly(item: SuiteItem, parser) -> bool:
    from tenku.eval import metrics, physics

    gt = item.ground_truth
    dets = parser.parse_video(item.frames)
    start = item.cond_frames if item.task == "physics" else 0
    if item.task == "physics":
        if item.scenario == "collision":
            c = physics.first_contact(gt)
            if c is None or c < start or c + 2 > gt["num_frames"] - 1:
                return False
        err = physics.trajectory_errors(dets, gt, 0)
        if err["found_fraction"] is None or err["found_fraction"] < 1.0:
            return False
        from tenku.eval.tracking import gt_array, gt_positions

        pos = np.array(err["positions"], dtype=np.float64)
        full = gt_array(gt, "visible") == "full"
        if (np.linalg.norm(pos - gt_positions(gt), axis=-1)[full] > 0.5).any():
            return False
    if item.task in ("t2v", "physics"):
        a = metrics.adherence(dets, item.facts, gt)
        if any(v is not None and v < 1.0 for v in a.values()):
            return False
        p = metrics.permanence(dets, gt, item.spec, start)
        if p["count_accuracy"] not in (None, 1.0) or p["appearances"] or p["disappearances"] or \
                p["reemerged"] not in (None, 1.0):
            return False
    return True


def build_suite(name: str | SuiteConfig, clips: int | None = None) -> tuple[SuiteConfig, list[SuiteItem]]:
    """The items of a suite (``clips``: keep the first N items of each task). Built once per process."""
    if clips is not None and clips < 1:
        raise TenkuError(f"--clips must be at least 1, got {clips}")
    cfg, items = _build_suite(name, clips)
    return cfg, list(items)


@functools.lru_cache(maxsize=8)
def _build_suite(name: str | SuiteConfig, clips: int | None) -> tuple[SuiteConfig, tuple[SuiteItem, ...]]:
    from tenku.world.captions import caption_facts
    from tenku.world.scenarios import sample_scene

    if isinstance(name, SuiteConfig):
        cfg = name
    elif name in SUITES:
        cfg = SUITES[name]
    else:
        raise TenkuError(f"unknown suite {name!r}; choose one of {sorted(SUITES)}")
    parser = default_parser()
    items: list[SuiteItem] = []
    for ti, task in enumerate(TASKS):
        made = 0
        for si, (split, scenario, n) in enumerate(getattr(cfg, task)):
            for i in range(n):
                if clips is not None and made >= clips:
                    break
                for attempt in range(50):
                    ss = np.random.SeedSequence([cfg.seed, ti, si, i, attempt])
                    rng = np.random.default_rng(ss)
                    spec = sample_scene(rng, split, scenario, width=cfg.width, height=cfg.height, fps=cfg.fps,
                                        seconds=cfg.seconds)
                    seed = int(ss.generate_state(1)[0])
                    item = SuiteItem(id=f"{task}-{split}-{scenario}-{i}", task=task, split=split,
                                     scenario=scenario, spec=spec.to_dict(), seed=seed, prompt="", facts={},
                                     cond_frames=cfg.cond_frames)
                    item.facts = caption_facts(spec, item.ground_truth)
                    item.prompt = item.clip.captions["medium"]
                    if _reads_perfectly(item, parser):
                        break
                else:
                    raise TenkuError(f"suite {cfg.name}: no readable {scenario} scene in {split} after 50 draws")
                items.append(item)
                made += 1
    return cfg, tuple(items)
