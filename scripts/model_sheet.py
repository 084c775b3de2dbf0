"""The model card's contact sheet: 12 prompts, seed 0, the folder's default settings (those of README's
first command), 5 frames per row, shown 2x.

    python scripts/model_sheet.py src/tenku/assets/tenku-world-tiny docs/images/default-model-sheet.png
"""

from __future__ import annotations

import argparse

import numpy as np

PROMPTS = (
    "a red ball rolls to the right", "a blue square moves to the left", "a yellow triangle falls down",
    "a green ball on a white background", "a purple square on a black background", "two orange balls bounce",
    "a cyan triangle moves up", "a magenta ball rests on a checkered floor", "a large red square moves right",
    "a small blue ball falls", "three yellow balls on a gray floor", "a green triangle slides left on a stone floor",
)


def main() -> None:
    from tenku.media import write_png
    from tenku.pipeline.pipeline import TenkuPipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a tenku pipeline folder")
    ap.add_argument("out", help="the PNG to write")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pipe = TenkuPipeline.from_pretrained(a.model)
    rows = []
    for prompt in PROMPTS:
        frames = pipe(prompt, seed=a.seed, progress=False).frames  # (T, H, W, 3), unmarked
        idx = np.linspace(0, len(frames) - 1, 5).round().astype(int)
        rows.append(np.concatenate([np.pad(frames[i], ((1, 1), (1, 1), (0, 0)), constant_values=255) for i in idx],
                                   axis=1))
    write_png(a.out, np.concatenate(rows, axis=0).repeat(2, 0).repeat(2, 1))
    print(a.out)


if __name__ == "__main__":
    main()
