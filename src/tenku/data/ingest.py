"""Ingest real video into tenku shards: find sources, plan shards, cut, filter, caption, write.

    sources (files, folders, globs; sorted) -> plan (sources packed into shards, long ones split)
      -> workers: decode, scene cuts, resample, bucket, per-clip statistics, drop short/static/blank
      -> main process, in shard order: drop duplicates, caption (sidecar / captioner / empty), write

The plan is saved as ``DIR/ingest_plan.json`` on the first run and reused, so the assignment of
sources to shards is fixed: sources are sorted by absolute path and packed into a shard until their
estimated clip count (duration / max_seconds) reaches ``clips_per_shard``; a source longer than
``clips_per_shard * max_seconds`` is split into segments of that length, one shard each (a segment
boundary acts as a scene cut). New sources on a rerun are planned into new shards after the old ones.
A shard is complete when its manifest exists; a rerun skips complete shards. Each written shard also
leaves ``DIR/ingest_reports/shard-NNNNN.json`` (kept/dropped counts, bad sources, captions), from
which ``DIR/ingest_summary.json`` is rebuilt at the end of every run.

Duplicates are judged in shard order (a clip against kept clips of lower shards of the same
``--shard i/n`` slice and earlier clips of its own shard), so the result does not depend on
how many workers ran or in which order shards finished.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tenku.errors import MediaError, TenkuError
from tenku.progress import progress_enabled

from .filters import DuplicateIndex, FilterConfig, clip_stats, reject_reason

PLAN_FILE = "ingest_plan.json"
SUMMARY_FILE = "ingest_summary.json"
REPORT_DIR = "ingest_reports"
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v", ".mpg", ".mpeg",
                              ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".vob", ".y4m"})
DROP_REASONS = ("too_short", "blank", "static", "duplicate")
PREVIEW_FRAMES = 4  # frames per clip sent to a captioner


@dataclass(frozen=True)
class IngestConfig:
    size: tuple[int, int] = (64, 64)  # base bucket (W, H); buckets of about this area, see scenes.make_buckets
    fps: float = 8.0
    min_seconds: float = 1.0
    max_seconds: float = 4.0
    clips_per_shard: int = 64
    crf: int = 18
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self):
        w, h = self.size
        if w % 16 or h % 16 or w < 16 or h < 16:
            raise TenkuError(f"size must be multiples of 16 (e.g. 64x64), got {w}x{h}")
        if not self.fps > 0:
            raise TenkuError(f"--fps must be positive, got {self.fps}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise TenkuError(f"need 0 < --min-seconds <= --max-seconds, got {self.min_seconds} and {self.max_seconds}")
        if self.max_frames < 1:
            raise TenkuError(f"--max-seconds {self.max_seconds} at --fps {self.fps} gives no frame")
        if self.clips_per_shard < 1:
            raise TenkuError(f"--clips-per-shard must be at least 1, got {self.clips_per_shard}")

    @property
    def max_frames(self) -> int:
        return int(math.floor(self.max_seconds * self.fps + 1e-6))

    @property
    def min_frames(self) -> int:
        return max(1, int(math.ceil(self.min_seconds * self.fps - 1e-6)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


# ---------------------------------------------------------------------------------------- sources

def _is_sidecar(p: Path) -> bool:
    return p.suffix.lower() in (".txt", ".json") and any(
        p.with_suffix(ext).exists() or p.with_suffix(ext.upper()).exists() for ext in VIDEO_EXTENSIONS)


def _walk(folder: Path, exclude: Path | None, found: list[Path], ignored: list[str]) -> None:
    for root, dirs, files in os.walk(folder):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (rootp / d).resolve() != exclude))
        for name in sorted(files):
            p = rootp / name
            if name.startswith("."):
                continue
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                found.append(p)
            elif not _is_sidecar(p):
                ignored.append(str(p))


def discover_sources(srcs: list[str], exclude: str | Path | None = None) -> tuple[list[Path], list[str]]:
    """Expand files, folders (recursive) and glob patterns into sorted absolute video paths.

    Files named directly are always tried; inside folders and glob matches only names with a
    video extension are taken, others are returned as ``ignored`` (caption sidecars are not listed).
    ``exclude`` (the output folder) is never entered."""
    exclude = Path(exclude).resolve() if exclude is not None else None
    found: list[Path] = []
    ignored: list[str] = []
    for s in srcs:
        p = Path(s).expanduser()
        if p.is_dir():
            _walk(p, exclude, found, ignored)
        elif p.exists():
            found.append(p)
        elif glob.has_magic(s):
            matches = sorted(glob.glob(os.path.expanduser(s), recursive=True))
            if not matches:
                raise TenkuError(f"no file matches the pattern {s!r}")
            for m in map(Path, matches):
                if m.is_dir():
                    _walk(m, exclude, found, ignored)
                elif m.suffix.lower() in VIDEO_EXTENSIONS:
                    found.append(m)
                elif not _is_sidecar(m):
                    ignored.append(str(m))
        else:
            raise TenkuError(f"source not found: {s} (expected a video file, a folder or a glob pattern)")
    out = sorted({q.resolve() for q in found if exclude is None or exclude not in q.resolve().parents},
                 key=str)
    return out, sorted(set(ignored))


# ------------------------------------------------------------------------------------------- plan

def make_plan(sources: list[Path], cfg: IngestConfig) -> list[list[dict]]:
    """Pack sorted sources into shards of about ``clips_per_shard`` estimated clips; split long ones."""
    from tenku.media import probe

    seg = cfg.clips_per_shard * cfg.max_seconds
    shards: list[list[dict]] = []
    cur: list[dict] = []
    cur_est = 0
    for src in sources:
        try:
            duration = float(probe(src)["duration"] or 0.0)
        except (MediaError, OSError):
            duration = 0.0  # the worker reports why it cannot be read
        if duration > seg * 1.5:
            if cur:
                shards.append(cur)
                cur, cur_est = [], 0
            k = 0
            while k * seg < duration:
                last = (k + 1) * seg >= duration - seg * 0.5
                shards.append([{"source": str(src), "start": k * seg, "end": None if last else (k + 1) * seg}])
                if last:
                    break
                k += 1
            continue
        est = max(1, math.ceil(duration / cfg.max_seconds))
        if cur and cur_est + est > cfg.clips_per_shard:
            shards.append(cur)
            cur, cur_est = [], 0
        cur.append({"source": str(src), "start": 0.0, "end": None})
        cur_est += est
    if cur:
        shards.append(cur)
    return shards


def load_or_make_plan(out: Path, sources: list[Path], cfg: IngestConfig) -> list[list[dict]]:
    from tenku.media import atomic_path

    path = out / PLAN_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text())
            plan, old_cfg = saved["shards"], saved["config"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise TenkuError(f"{path} is damaged ({e}); ingest into a new --out folder") from None
        if old_cfg != cfg.to_dict():
            diff = {k: (old_cfg.get(k), v) for k, v in cfg.to_dict().items() if old_cfg.get(k) != v}
            raise TenkuError(f"{out} was ingested with other settings ({', '.join(f'{k}: {a} -> {b}' for k, (a, b) in diff.items())}); "
                             "rerun with the same settings to resume, or use a new --out folder")
        planned = {u["source"] for shard in plan for u in shard}
        new = [s for s in sources if str(s) not in planned]
        if not new:
            return plan
        plan = plan + make_plan(new, cfg)
    else:
        plan = make_plan(sources, cfg)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"version": 1, "config": cfg.to_dict(), "shards": plan}, indent=1) + "\n")
    return plan


# ----------------------------------------------------------------------------------------- worker

def process_unit(task: tuple[int, list[dict], dict, bool]) -> dict:
    """Decode, cut and filter the sources of one shard (runs in a worker process).

    Returns the surviving clips (frames, preview frames, meta, sidecar captions), the number dropped
    per reason, and the sources that could not be read with the reason."""
    from .caption import read_sidecar
    from .scenes import extract_clips

    index, unit, cfg_d, previews = task
    cfg = IngestConfig(size=tuple(cfg_d["size"]), fps=cfg_d["fps"], min_seconds=cfg_d["min_seconds"],
                       max_seconds=cfg_d["max_seconds"], clips_per_shard=cfg_d["clips_per_shard"],
                       crf=cfg_d["crf"], filters=FilterConfig(**cfg_d["filters"]))
    kept, dropped, bad, sidecar_errors = [], Counter(), [], []
    seconds_in = 0.0
    for item in unit:
        src = item["source"]
        info: dict = {}
        try:
            clips = list(extract_clips(src, cfg.size, cfg.fps, cfg.max_frames, start=item["start"],
                                       end=item["end"], previews=PREVIEW_FRAMES if previews else 0, stats=info))
        except MediaError as e:
            bad.append({"path": src, "reason": str(e)})
            continue
        except Exception as e:  # a file PyAV chokes on in an unexpected way must not stop the run
            bad.append({"path": src, "reason": f"{type(e).__name__}: {e}"})
            continue
        seconds_in += info["decoded_frames"] / (info["fps"] or 25.0)
        try:
            sidecar = read_sidecar(src)
        except TenkuError as e:
            sidecar, _ = None, sidecar_errors.append(str(e))
        for c in clips:
            if len(c.frames) < cfg.min_frames:
                dropped["too_short"] += 1
                continue
            st = clip_stats(c.frames, cfg.filters)
            reason = reject_reason(st, cfg.filters)
            if reason:
                dropped[reason] += 1
                continue
            meta = {"source": src, "start": round(c.start, 3), "end": round(c.end, 3), "scene": c.scene,
                    "part": c.part, "segment_start": item["start"], "source_size": [info["width"], info["height"]],
                    "rotation": info["rotation"],
                    "source_fps": round(info["fps"], 3), "cuts": info["cuts"], **st}
            kept.append({"frames": c.frames, "previews": c.previews, "meta": meta, "sidecar": sidecar,
                         "group": f"{src}@{item['start']}#{c.scene}"})
    return {"index": index, "clips": kept, "dropped": dict(dropped), "bad": bad,
            "sidecar_errors": sidecar_errors, "sources": len(unit), "seconds_in": seconds_in}


def _ordered_results(tasks: list, workers: int):
    """Results of process_unit in task order; at most 2 * workers tasks in flight."""
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield process_unit(t)
        return
    import multiprocessing as mp
    from collections import deque

    ctx = mp.get_context("spawn")  # the parent may hold torch/OpenMP threads; fork is not safe then
    with ctx.Pool(min(workers, len(tasks))) as pool:
        pending: deque = deque()
        it = iter(tasks)
        for t in it:
            pending.append(pool.apply_async(process_unit, (t,)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            res = pending.popleft().get()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.apply_async(process_unit, (nxt,)))
            yield res


# ------------------------------------------------------------------------------------------- main

def _load_report(out: Path, k: int) -> dict | None:
    p = out / REPORT_DIR / f"shard-{k:05d}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _load_duplicate_index(out: Path, shards: list[int], max_distance: int) -> DuplicateIndex:
    from .shards import shard_name

    index = DuplicateIndex(max_distance)
    for k in sorted(shards):
        path = out / f"{shard_name(k)}.jsonl"
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                m = rec.get("meta") or {}
                if m.get("phash"):
                    index.add(m["phash"], m.get("group", ""), k, rec["id"])
    return index


def _caption_clips(clips: list[dict], captioner, concurrency: int, counts: Counter, errors: list[str]) -> list[dict]:
    from .caption import CaptionerError, CaptionerRejected, split_caption

    caps: list[dict | None] = [c["sidecar"] for c in clips]
    ask = [i for i, c in enumerate(caps) if c is None and clips[i]["previews"]] if captioner else []

    def one(i: int):
        try:
            return i, captioner.caption(clips[i]["previews"]), None
        except CaptionerRejected:
            raise
        except CaptionerError as e:
            return i, None, str(e)

    if ask:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, concurrency)) as ex:
            for i, res, err in ex.map(one, ask):
                if res is None:
                    counts["failed"] += 1
                    if len(errors) < 20:
                        errors.append(f"{clips[i]['meta']['source']} @ {clips[i]['meta']['start']} s: {err}")
                    continue
                text, cached = res
                caps[i] = split_caption(text)
                counts["captioner"] += 1
                counts["cache_hits"] += int(cached)
    out = []
    for c, cap in zip(clips, caps):
        if c["sidecar"] is not None:
            counts["sidecar"] += 1
        elif cap is None or not cap.get("long"):
            counts["empty"] += 1
        out.append(cap or {"short": "", "medium": "", "long": ""})
    return out


def run_ingest(srcs: list[str], out: str | Path, cfg: IngestConfig = IngestConfig(), workers: int = 1,
               shard: str | None = None, captioner_cfg=None, captioner_concurrency: int = 4,
               progress: bool = True, log=print) -> dict:
    """Ingest ``srcs`` into the shard folder ``out``; returns (and writes) the summary."""
    from tenku.media import atomic_path

    from .caption import Captioner
    from .shards import ShardWriter, completed_shards, parse_shard_spec, shard_name, write_dataset_info

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TenkuError(f"--out {out} exists and is not a folder")
    slice_i, slice_n = parse_shard_spec(shard)
    if workers < 1:
        raise TenkuError(f"--workers must be at least 1, got {workers}")
    sources, ignored = discover_sources(srcs, exclude=out)
    if not sources:
        raise TenkuError(f"no video files found in {' '.join(srcs)} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    captioner = Captioner(captioner_cfg) if captioner_cfg is not None else None
    plan = load_or_make_plan(out, sources, cfg)
    write_dataset_info(out, source="ingest", ingest=cfg.to_dict())
    mine = [k for k in range(len(plan)) if k % slice_n == slice_i]
    done = completed_shards(out)
    skipped = [k for k in mine if k in done]
    todo = [k for k in mine if k not in done]
    dedupe = _load_duplicate_index(out, skipped, cfg.filters.max_hash_distance)
    tasks = [(k, plan[k], cfg.to_dict(), captioner is not None) for k in todo]
    log(f"ingest: {len(sources)} sources, {len(plan)} shards planned, {len(mine)} in slice {slice_i}/{slice_n}: "
        f"{len(skipped)} already complete, {len(todo)} to write")

    from tqdm import tqdm

    bar = tqdm(total=sum(len(plan[k]) for k in todo), unit="video", desc="ingest", file=sys.stderr,
               disable=not progress_enabled(progress))
    written = []
    total_kept = 0
    try:
        for res in _ordered_results(tasks, workers):
            k = res["index"]
            counts: Counter = Counter()
            errors: list[str] = []
            clips = []
            dropped = Counter(res["dropped"])
            for c in res["clips"]:
                if dedupe.find(c["meta"]["phash"], c["group"], k) is not None:
                    dropped["duplicate"] += 1
                    continue
                clips.append(c)
                dedupe.add(c["meta"]["phash"], c["group"], k, f"{shard_name(k)}/{len(clips) - 1:06d}")
            captions = _caption_clips(clips, captioner, captioner_concurrency, counts, errors)
            report = {"shard": k, "sources": [u["source"] for u in plan[k]], "kept": len(clips),
                      "seconds_kept": round(sum(len(c["frames"]) for c in clips) / cfg.fps, 3),
                      "seconds_in": round(res["seconds_in"], 3), "dropped": dict(dropped), "bad": res["bad"],
                      "sidecar_errors": res["sidecar_errors"], "captions": dict(counts), "caption_errors": errors}
            with ShardWriter(out, k, crf=cfg.crf) as w:
                for c, cap in zip(clips, captions):
                    meta = dict(c["meta"], group=c["group"])
                    w.add(c["frames"], cfg.fps, captions=cap, meta=meta)
                with atomic_path(out / REPORT_DIR / f"{shard_name(k)}.json") as tmp:
                    tmp.write_text(json.dumps(report, indent=1) + "\n")
            written.append(k)
            total_kept += len(clips)
            bar.update(len(plan[k]))
            bar.set_postfix(kept=total_kept)
    finally:
        bar.close()
    summary = build_summary(out, plan, mine, written, skipped, ignored, captioner, cfg, (slice_i, slice_n))
    with atomic_path(out / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    log(format_summary(summary))
    return summary


def build_summary(out: Path, plan, mine, written, skipped, ignored, captioner, cfg, slice_) -> dict:
    kept = 0
    seconds = 0.0
    dropped: Counter = Counter({r: 0 for r in DROP_REASONS})
    caps: Counter = Counter({k: 0 for k in ("sidecar", "captioner", "cache_hits", "failed", "empty")})
    bad, sidecar_errors, caption_errors, missing = [], [], [], []
    for k in mine:
        rep = _load_report(out, k)
        if rep is None:
            missing.append(k)
            continue
        kept += rep["kept"]
        seconds += rep["seconds_kept"]
        dropped.update(rep["dropped"])
        caps.update(rep["captions"])
        bad += rep["bad"]
        sidecar_errors += rep["sidecar_errors"]
        caption_errors += rep["caption_errors"]
    notes = []
    if caps["empty"]:
        notes.append(f"{caps['empty']} kept clips have empty captions (no sidecar"
                     + (" and the captioner failed" if captioner else " and no --captioner given") + ")")
    return {"out": str(out), "slice": f"{slice_[0]}/{slice_[1]}",
            "sources": sum(len(plan[k]) for k in mine),
            "shards": {"planned": len(plan), "in_slice": len(mine), "written": written,
                       "skipped_complete": skipped, "incomplete": [k for k in mine if k not in written and k not in skipped]},
            "clips": {"kept": kept, "seconds": round(seconds, 3), "dropped": dict(dropped)},
            "bad_sources": bad, "ignored_files": ignored, "captions": dict(caps),
            "caption_errors": caption_errors, "sidecar_errors": sidecar_errors,
            "captioner": {"url": captioner.cfg.url, "model": captioner.cfg.model, **captioner.counts} if captioner else None,
            "notes": notes, "config": cfg.to_dict()}


def format_summary(s: dict) -> str:
    d = s["clips"]["dropped"]
    lines = [f"kept {s['clips']['kept']} clips ({s['clips']['seconds']:.1f} s) from {s['sources']} sources; "
             f"shards written {len(s['shards']['written'])}, skipped (already complete) {len(s['shards']['skipped_complete'])}"
             + (f": {s['shards']['skipped_complete']}" if s["shards"]["skipped_complete"] else ""),
             "dropped: " + ", ".join(f"{k} {v}" for k, v in d.items()),
             "captions: " + ", ".join(f"{k} {v}" for k, v in s["captions"].items())]
    if s["bad_sources"]:
        lines.append(f"skipped {len(s['bad_sources'])} unreadable sources:")
        lines += [f"  {b['path']}: {b['reason']}" for b in s["bad_sources"]]
    if s["ignored_files"]:
        lines.append(f"ignored {len(s['ignored_files'])} files without a video extension"
                     + (": " + ", ".join(s["ignored_files"][:5]) + (" ..." if len(s["ignored_files"]) > 5 else "")))
    lines += s["notes"] + [f"  sidecar: {e}" for e in s["sidecar_errors"]] + [f"  caption: {e}" for e in s["caption_errors"][:5]]
    lines.append(f"summary: {Path(s['out']) / SUMMARY_FILE}")
    return "\n".join(lines)
