"""``tenku verify FILE [--json]``: check a file's C2PA manifest and invisible watermark.

Exit codes: 0 manifest valid + watermark, 1 no provenance, 2 error, 3 manifest invalid (tampered),
4 watermark only (manifest stripped), 5 manifest valid but no watermark.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check a file's C2PA manifest and invisible watermark",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="an mp4/png (or any video/image) to check")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trust-anchors", default=None,
                   help="PEM file of CA certificates you trust (default: $TENKU_C2PA_TRUST_ANCHORS)")
    p.set_defaults(func=handler)


def handler(args) -> int:
    import json

    from tenku.safety.verify import format_report, verify_file

    safety = getattr(args, "safety", None)
    anchors = args.trust_anchors or (safety.signing.trust_anchors if safety is not None else None)
    report = verify_file(args.file, trust_anchors=anchors)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return report["exit_code"]
