"""Report files: ``report.json`` (every number), ``report.md`` (tables), ``contact_sheet.png`` (generated
vs ground-truth frames) and ``trajectories.png`` (generated vs true object paths of the physics clips).
Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tenku.media import atomic_path, write_png

SHEET_CLIPS = 8
SHEET_FRAMES = 6


def write_report(report: dict, results: list[dict], videos: dict, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md"}
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")
    sheet = contact_sheet(videos)
    if sheet is not None:
        paths["sheet"] = write_png(out / "contact_sheet.png", sheet)
    traj = [r for r in results if r.get("physics")]
    if traj:
        paths["trajectories"] = trajectory_plot(traj, out / "trajectories.png")
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(markdown(report, [p.name for p in paths.values() if p.suffix == ".png"]))
    return paths


def contact_sheet(videos: dict, clips: int = SHEET_CLIPS, frames: int = SHEET_FRAMES) -> np.ndarray | None:
    """A grid: for each of the first ``clips`` clips a row of generated frames above a row of the
    ground truth, ``frames`` evenly spaced frames per row, 2 px white gaps, 4 px between clips."""
    if not videos:
        return None
    rows = []
    for gen, ref in list(videos.values())[:clips]:
        idx = np.linspace(0, len(ref) - 1, frames).round().astype(int)
        for v in (gen, ref):
            tiles = [v[i] for i in idx]
            gap = np.full((v.shape[1], 2, 3), 255, np.uint8)
            row = np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], axis=1)
            rows.append(row)
            rows.append(np.full((2, row.shape[1], 3), 255, np.uint8))
        rows.append(np.full((4, rows[-1].shape[1], 3), 200, np.uint8))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.ascontiguousarray(np.concatenate(rows[:-1], axis=0))


def trajectory_plot(results: list[dict], path: Path, clips: int = 6) -> Path:
    """Object paths (generated dashed, ground truth solid) of up to ``clips`` physics clips, one per
    scenario first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    firsts = {}
    for r in results:  # one clip per scenario first, then the rest in order
        firsts.setdefault(r["scenario"], r)
    sel = list(firsts.values()) + [r for r in results if r not in firsts.values()]
    sel = sel[:clips]
    cols = min(3, len(sel))
    nrows = (len(sel) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, r in zip(axes.ravel(), sel):
        ax.set_visible(True)
        gen = np.array(r["physics"]["positions"], dtype=np.float64)
        ref = np.array(r["physics"]["positions_ref"], dtype=np.float64)
        for i in range(gen.shape[1]):
            line, = ax.plot(ref[:, i, 0], ref[:, i, 1], "-", lw=1.5, label=f"object {i} true")
            ax.plot(gen[:, i, 0], gen[:, i, 1], "--", marker=".", ms=3, lw=1, color=line.get_color(),
                    label=f"object {i} generated")
        ax.set_title(r["id"], fontsize=7)
        ax.set_xlim(0, r["width"])
        ax.set_ylim(r["height"], 0)  # y down, as in the frame
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    axes.ravel()[0].legend(fontsize=5, loc="best")
    fig.suptitle("trajectories: ground truth (solid) vs generated (dashed), frame pixels", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown(report: dict, images: list[str]) -> str:
    m = report["metrics"]
    s = report["suite"]
    lines = [f"# tenku eval: {report['model']['name']} on suite {s['name']} v{s['version']}", "",
             f"- model: `{report['model'].get('path') or report['model']['name']}`",
             f"- code: tenku {report['code_version']['tenku']} ({report['code_version'].get('git') or 'no git'})",
             f"- seed: {report['seed']}, steps: {_fmt(report['steps'])}, clips: {len(report['clips'])}", ""]
    if "adherence" in m:
        lines += ["## Prompt adherence (accuracy)", "", "| prompts | colour | shape | count | direction | speed |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for g, vals in m["adherence"].items():
            cells = [(_fmt(vals[a]["accuracy"]) + f" ({vals[a]['clips']})") if a in vals else "-"
                     for a in ("color", "shape", "count", "direction", "speed")]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        lines.append("")
    if "physics" in m:
        lines += ["## Physics by extension (error / floor = ratio; 1 is a perfect simulator)", "",
                  "| split | quantity | error | floor | ratio | clips |", "| --- | --- | --- | --- | --- | --- |"]
        units = {"position": "px", "velocity": "px/s", "acceleration": "px/s^2", "momentum": "rel.",
                 "energy": "rel."}
        for split, vals in m["physics"].items():
            for q, u in units.items():
                if q in vals:
                    v = vals[q]
                    lines.append(f"| {split} | {q} ({u}) | {_fmt(v['error'])} | {_fmt(v['floor'])} | "
                                 f"{_fmt(v['ratio'])} | {v['clips']} |")
        lines.append("")
    if "permanence" in m:
        p = m["permanence"]
        lines += ["## Object permanence", "", "| metric | value |", "| --- | --- |"]
        for k in ("count_accuracy", "appearances_per_clip", "disappearances_per_clip", "reemergence_rate",
                  "reemergence_clips", "clips"):
            if k in p:
                lines.append(f"| {k} | {_fmt(p[k])} |")
        lines.append("")
    if "quality" in m:
        lines += ["## Video quality", "", "| metric | value |", "| --- | --- |"]
        for k, v in m["quality"].items():
            lines.append(f"| {k} | {_fmt(v)} |")
        lines.append("")
    if images:
        lines += ["## Pictures", ""] + [f"![{n}]({n})" for n in images] + [""]
        lines.append("The contact sheet shows, per clip, generated frames above ground-truth frames.")
        lines.append("")
    return "\n".join(lines)
