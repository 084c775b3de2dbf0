"""``tenku verify``: a file's C2PA manifest and invisible watermark, as one report with an exit code.

Exit codes (for scripts):

    0  provenance complete: the C2PA manifest is valid (or trusted) and the watermark is present
    1  no provenance: no manifest and no watermark
    2  error: the file cannot be read (printed as ``error: ...``)
    3  the manifest is present but invalid: the file was changed after signing (tampered)
    4  watermark only: no manifest (stripped, e.g. by a re-encode) but the watermark is present
    5  manifest valid but no watermark found
"""

from __future__ import annotations

from pathlib import Path

from tenku.errors import MediaError

EXIT_CODES = {"complete": 0, "none": 1, "tampered": 3, "watermark-only": 4, "manifest-only": 5}


def _frames(path: Path):
    from tenku import media

    if path.suffix.lower() in media.IMAGE_SUFFIXES:
        return media.read_image(path)
    frames, _ = media.read_video(path, max_frames=240)
    return frames


def verify_file(path: str | Path, trust_anchors: str | Path | None = None) -> dict:
    """Report on ``path``: ``{"file", "verdict", "exit_code", "c2pa": {...}, "watermark": {...}}``."""
    from tenku.safety import provenance, watermark

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"file not found: {path}")
    c2pa = provenance.read_manifest(path, trust_anchors=trust_anchors)
    try:
        mark = watermark.detect(_frames(path)).to_dict()
    except MediaError as e:
        mark = {"detected": False, "error": str(e)}
    if c2pa.state == "invalid":
        verdict = "tampered"
    elif c2pa.state in ("valid", "trusted"):
        verdict = "complete" if mark["detected"] else "manifest-only"
    else:
        verdict = "watermark-only" if mark["detected"] else "none"
    if "error" in mark and c2pa.state not in ("valid", "trusted"):  # not media at all: neither tampered nor clean
        raise MediaError(f"{path} is not an image or video tenku can read ({mark['error']}); tenku verify checks "
                         "mp4, png and other video or image files")
    note = None
    if c2pa.state == "valid" and c2pa.signer.get("issuer") == "tenku local":
        note = provenance.UNTRUSTED_NOTE
    return {"file": str(path), "verdict": verdict, "exit_code": EXIT_CODES[verdict], "c2pa": c2pa.to_dict(),
            "watermark": mark, "note": note}


def format_report(report: dict) -> str:
    c, w = report["c2pa"], report["watermark"]
    lines = [f"{report['file']}: {report['verdict']} (exit {report['exit_code']})",
             f"  C2PA manifest: {c['state']}" + (" (trusted)" if c["trusted"] else
                                                  " (untrusted signer)" if c["state"] == "valid" else "")]
    if c.get("signer"):
        lines.append(f"    signer: {c['signer'].get('common_name')} / {c['signer'].get('issuer')}")
    for a in c.get("claims", {}).get("actions", []) or []:
        params = a.get("parameters", {})
        lines.append(f"    action: {a.get('action')} by {a.get('softwareAgent', {}).get('name')} "
                     f"{a.get('softwareAgent', {}).get('version')}; source type {a.get('digitalSourceType', '')}")
        lines.append(f"    model: {params.get('model')}; parameters: {params.get('generation')}")
    for f in c.get("failures", []):
        lines.append(f"    failure: {f['code']}: {f['explanation']}")
    if c.get("error"):
        lines.append(f"    error: {c['error']}")
    if w.get("detected"):
        lines.append(f"  watermark: present, payload {w['payload']} (z {w['z']}, p {w['p_value']:.1e}, "
                     f"scale {w['scale']})")
    else:
        lines.append(f"  watermark: not found (best z {w.get('z', 'n/a')}, p {w.get('p_value', 1.0):.1e}; "
                     "a mark needs its CRC and p <= 1e-7)")
    if report.get("note"):
        lines.append(f"  note: {report['note']}")
    return "\n".join(lines)
