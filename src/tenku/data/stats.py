"""``tenku data stats DIR``: what a shard folder holds.

Counts, durations, sizes, frame rates, caption lengths (words per level, empty captions), motion and
brightness (from the record's ``meta`` when ingest stored them, else measured on the decoded clip),
ingest sources; written as ``stats.json``, ``stats.md`` and a motion histogram ``stats_motion.png``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from tenku.errors import MediaError, TenkuError

from .shards import CAPTION_LEVELS, iter_records


def _describe(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "mean": round(float(a.mean()), 3), "min": round(float(a.min()), 3),
            "median": round(float(np.median(a)), 3), "max": round(float(a.max()), 3)}


def compute_stats(root: str | Path, measure: bool = True) -> dict:
    """Statistics of every complete shard under ``root``. ``measure`` decodes clips whose record has
    no motion/brightness in ``meta`` (world clips) to measure them."""
    from tenku.media import read_video

    from .filters import brightness, motion_score

    records = list(iter_records(root))
    seconds, motion, bright, unreadable = [], [], [], []
    sizes, fps, splits, sources = Counter(), Counter(), Counter(), set()
    words = {k: [] for k in CAPTION_LEVELS}
    empty = Counter({k: 0 for k in CAPTION_LEVELS})
    for rec in records:
        n, f = int(rec.get("num_frames", 0)), float(rec.get("fps") or 0)
        seconds.append(n / f if f else 0.0)
        sizes[f"{rec.get('width')}x{rec.get('height')}"] += 1
        fps[str(rec.get("fps"))] += 1
        splits[str(rec.get("split"))] += 1
        caps = rec.get("captions") or {}
        for k in CAPTION_LEVELS:
            text = (caps.get(k) or "").strip()
            words[k].append(len(text.split()))
            empty[k] += not text
        meta = rec.get("meta") or {}
        if meta.get("source"):
            sources.add(meta["source"])
        m, b = meta.get("motion"), meta.get("brightness")
        if (m is None or b is None) and measure:
            try:
                frames, _ = read_video(rec["video"])
                m, b = motion_score(frames), brightness(frames)
            except MediaError:
                unreadable.append(rec["id"])
        if m is not None:
            motion.append(float(m))
        if b is not None:
            bright.append(float(b))
    return {"root": str(root), "clips": len(records), "seconds_total": round(sum(seconds), 3),
            "seconds": _describe(seconds), "sizes": dict(sizes.most_common()), "fps": dict(fps.most_common()),
            "splits": dict(splits), "sources": len(sources),
            "caption_words": {k: _describe(v) for k, v in words.items()}, "caption_empty": dict(empty),
            "motion": _describe(motion), "brightness": _describe(bright),
            "motion_histogram": _histogram(motion), "unreadable_clips": unreadable}


def _histogram(values: list[float], bins: int = 12) -> dict:
    if not values:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(np.asarray(values), bins=bins)
    return {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()}


def plot_motion(stats: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tenku.media import atomic_path

    h = stats["motion_histogram"]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if h["counts"]:
        edges = np.asarray(h["edges"])
        ax.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", edgecolor="black", color="#4a90c2")
    ax.set_xlabel("motion score (mean |frame difference|, luma 0-255)")
    ax.set_ylabel("clips")
    ax.set_title(f"motion of {stats['clips']} clips in {Path(stats['root']).name}")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def to_markdown(s: dict) -> str:
    def row(name: str, d: dict) -> str:
        if not d.get("n"):
            return f"| {name} | 0 | | | | |"
        return f"| {name} | {d['n']} | {d['mean']} | {d['min']} | {d['median']} | {d['max']} |"

    lines = [f"# Dataset statistics: {s['root']}", "",
             f"- clips: {s['clips']} ({s['seconds_total']:.1f} s)"
             + (f" from {s['sources']} ingested source videos" if s["sources"] else ""),
             f"- sizes: {', '.join(f'{k} ({v})' for k, v in s['sizes'].items())}",
             f"- fps: {', '.join(f'{k} ({v})' for k, v in s['fps'].items())}",
             f"- splits: {', '.join(f'{k} ({v})' for k, v in s['splits'].items())}",
             f"- empty captions: {', '.join(f'{k} {v}' for k, v in s['caption_empty'].items())}", "",
             "| quantity | n | mean | min | median | max |", "|---|---|---|---|---|---|",
             row("duration (s)", s["seconds"]), row("motion", s["motion"]), row("brightness", s["brightness"])]
    lines += [row(f"caption words ({k})", v) for k, v in s["caption_words"].items()]
    h = s["motion_histogram"]
    if h["counts"]:
        lines += ["", "Motion histogram:", "", "| motion from | to | clips |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in zip(h["edges"][:-1], h["edges"][1:], h["counts"])]
    if s["unreadable_clips"]:
        lines += ["", f"Unreadable clips: {', '.join(s['unreadable_clips'])}"]
    return "\n".join(lines) + "\n"


def write_stats(root: str | Path, out: str | Path | None = None, plot: bool = True) -> dict:
    """Compute the statistics and write stats.json, stats.md and stats_motion.png to ``out`` (default ``root``)."""
    from tenku.media import atomic_path

    root = Path(root)
    out = Path(out) if out is not None else root
    if out.exists() and not out.is_dir():
        raise TenkuError(f"--out {out} exists and is not a folder")
    s = compute_stats(root)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "stats.json") as tmp:
        tmp.write_text(json.dumps(s, indent=1) + "\n")
    with atomic_path(out / "stats.md") as tmp:
        tmp.write_text(to_markdown(s))
    s["files"] = [str(out / "stats.json"), str(out / "stats.md")]
    if plot:
        s["files"].append(str(plot_motion(s, out / "stats_motion.png")))
    return s
