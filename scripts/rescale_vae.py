"""Write a copy of a patch VAE whose latent channels are scaled by their deviation to a power.

    python scripts/rescale_vae.py src/tenku/assets/tenku-world-tiny/vae runs/vae-p05 --power 0.5

The shipped patch VAE is whitened: every latent channel has unit variance on world clips, so in a DiT's
loss a block's mean brightness (channel 0, deviation 13.3) weighs as much as each of its 95 finer
components. ``--power p`` multiplies channel i by ``dev_i ** p`` (scaled so the mean square stays 1),
which puts it part of the way back to the components' own spread (p = 1: unwhitened). The
reconstruction is exactly the same (:meth:`tenku.models.patch_vae.PatchVAE.scale_channels_`); only the
latent a DiT sees changes, so cache latents with the new folder and train the DiT on them.
"""

from __future__ import annotations

import argparse
import json

import torch

from tenku.models.hub import load_vae, save_pretrained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vae", help="a PatchVAE component folder (or a pipeline folder holding one)")
    ap.add_argument("out", help="the folder to write")
    ap.add_argument("--power", type=float, default=0.5, help="0 keeps the code as it is, 1 unwhitens it")
    a = ap.parse_args()
    vae = load_vae(a.vae).float()
    if not hasattr(vae, "scale_channels_"):
        raise SystemExit(f"error: {a.vae} holds a {type(vae).__name__}, not a PatchVAE; only a patch code rescales")
    dev = vae.channel_deviations()
    gain = dev ** a.power
    gain = gain / gain.pow(2).mean().sqrt()
    vae.scale_channels_(gain)
    save_pretrained(vae, vae.cfg, a.out)
    print(json.dumps({"out": a.out, "power": a.power, "gain_min": round(float(gain.min()), 4),
                      "gain_max": round(float(gain.max()), 4), "deviation_first": round(float(dev[0]), 4)}))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
