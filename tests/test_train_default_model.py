"""The default model shipped inside the package loads and generates a clip (small size, few steps)."""

from __future__ import annotations

import numpy as np

from tenku.pipeline import default_model_path


def test_shipped_default_model_is_small_and_generates():
    from tenku.pipeline.pipeline import TenkuPipeline

    path = default_model_path()
    assert (path / "model_index.json").is_file(), f"the default model is missing at {path}"
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < 40 * 2**20, f"the default model folder is {size / 2**20:.1f} MiB; keep it under 40 MiB"
    pipe = TenkuPipeline.from_pretrained(path)
    assert pipe.transformer.cfg.patch_size == (1, 2, 2)
    assert pipe.vae.cfg.latent_channels == 16 and pipe.vae.cfg.spatial_factor == 8
    out = pipe("a red circle moving to the right", num_frames=9, height=32, width=32, num_steps=2, seed=0,
               progress=False)
    assert out.frames.shape == (9, 32, 32, 3) and out.frames.dtype == np.uint8
    assert out.frames.std() > 1.0  # not a blank clip
    again = pipe("a red circle moving to the right", num_frames=9, height=32, width=32, num_steps=2, seed=0,
                 progress=False)
    assert np.array_equal(out.frames, again.frames)  # same seed, same clip
