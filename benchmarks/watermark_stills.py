"""Does a single generated PNG carry a watermark that reads back? Generates ``--images`` text-to-image frames
with the shipped default model (seeds ``--seed-base`` + i, ten world prompts in turn), writes each through
the real output path (watermark, PNG, C2PA), reads the PNG back and runs the detector on it.

    python benchmarks/watermark_stills.py --images 50 --threads 1
    python benchmarks/watermark_stills.py --images 50 --threads 1 --plain   # the mark at its video strength only

``--plain`` marks each frame once at the video strength (no read-back and strengthening), as stills were
marked before: the figure to compare with.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import base_parser, emit, machine_info, setup_torch  # noqa: E402

PROMPTS = ("a red ball", "a blue square moves to the left", "a yellow triangle falls down",
           "a green ball on a white floor", "two purple squares", "an orange disc on a black background",
           "a cyan triangle", "a grey ball rolls", "a pink square", "a big red ball")


def main() -> None:
    p = base_parser(__doc__)
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--seed-base", type=int, default=2000)
    p.add_argument("--plain", action="store_true", help="mark at the video strength only (the old behaviour)")
    args = p.parse_args()
    setup_torch(args)
    from PIL import Image

    from tenku.pipeline import TenkuPipeline
    from tenku.pipeline.modes import TextToImage
    from tenku.pipeline.output import save_output_stream
    from tenku.safety import watermark

    if args.plain:  # the writer marks through watermark.embed: keep the plain mark on stills
        watermark.embed = functools.partial(watermark.embed, still_boost=False)
    pipe = TenkuPipeline.from_pretrained()
    rows, start = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.images):
            prompt, seed = PROMPTS[i % len(PROMPTS)], args.seed_base + i
            stream = pipe.stream(prompt, None, mode=TextToImage(), num_frames=1, seed=seed, progress=False)
            path = save_output_stream(stream, Path(tmp) / f"{i}.png")
            frame = np.asarray(Image.open(path).convert("RGB"))
            r = watermark.detect(frame)
            rows.append({"seed": seed, "prompt": prompt, "detected": bool(r.detected), "z": round(r.z, 2)})
    found = sum(r["detected"] for r in rows)
    emit({"benchmark": "watermark_stills", "machine": machine_info(), "plain": args.plain, "images": args.images,
          "detected": found, "missed": [r for r in rows if not r["detected"]],
          "z_median": float(np.median([r["z"] for r in rows])), "seconds": round(time.time() - start, 1)}, args.json)


if __name__ == "__main__":
    main()
