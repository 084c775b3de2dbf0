"""Write a copy of a patch VAE whose latent channels are scaled by their deviation to a power.

    python scripts/rescale_vae.py src/tenku/assets/tenku-world-tiny/vae runs/vae-p05 --power 0.5

The shipped patch VAE is whitened: every latent channel has unit variance on world clips, so in a DiT's
loss a block's mean brightness (channel 0, deviation 13.3) weighs as much as each of its 95 finer
components. ``--power p`` multiplies channel i by ``dev_i ** p`` (scaled so the mean square stays 1),
which puts it part of the way back to the components' own spread (p = 1: unwhitened). The
reconstruction is exactly the same (:meth:`tenku.models.patch_vae.PatchVAE.scale_channels_`); only the
latent a DiT sees changes, so cache latents with the new folder and train the DiT on them.

``--match REF`` instead scales the channels so that the encoder equals REF's (a rescaled copy of the
same fitted encoder): the decoder may have trained since REF was written (the encoder is held while it
trains), and this gives the finished VAE exactly the code REF wrote the latent cache with.
"""

from __future__ import annotations

import argparse
import json

import torch

from tenku.models.hub import load_vae, save_pretrained


def _matching_gain(vae, ref, ref_path: str) -> torch.Tensor:
    """(latent,) the per-channel gain that turns ``vae``'s encoder into ``ref``'s (the same fitted encoder,
    rescaled); exits with a message when ``ref`` is not such a copy."""
    w = vae.encoder.group.weight.detach().double().flatten(1)  # (latent, block values)
    r = ref.encoder.group.weight.detach().double().flatten(1) if hasattr(ref, "scale_channels_") else None
    if r is None or r.shape != w.shape:
        raise SystemExit(f"error: {ref_path} is not a patch VAE with {tuple(w.shape)} encoder rows")
    gain = r.norm(dim=1) / w.norm(dim=1).clamp_min(1e-12)
    wf, rf = (m.encoder.first.weight.detach().double().flatten(1) for m in (vae, ref))
    if not (torch.allclose(w * gain[:, None], r, rtol=1e-4, atol=1e-6)
            and torch.allclose(wf * gain[:, None], rf, rtol=1e-4, atol=1e-6)):
        raise SystemExit(f"error: {ref_path}'s encoder is not a rescaled copy of this VAE's encoder; "
                         "pass the folder written from the same fitted encoder")
    return gain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vae", help="a PatchVAE component folder (or a pipeline folder holding one)")
    ap.add_argument("out", help="the folder to write")
    ap.add_argument("--power", type=float, default=0.5, help="0 keeps the code as it is, 1 unwhitens it")
    ap.add_argument("--match", metavar="REF", help="a rescaled copy of the same encoder to take the scales from")
    a = ap.parse_args()
    vae = load_vae(a.vae).float()
    if not hasattr(vae, "scale_channels_"):
        raise SystemExit(f"error: {a.vae} holds a {type(vae).__name__}, not a PatchVAE; only a patch code rescales")
    dev = vae.channel_deviations()
    if a.match:
        gain = _matching_gain(vae, load_vae(a.match).float(), a.match)
    else:
        gain = dev ** a.power
        gain = gain / gain.pow(2).mean().sqrt()
    vae.scale_channels_(gain)
    save_pretrained(vae, vae.cfg, a.out)
    print(json.dumps({"out": a.out, "power": None if a.match else a.power, "match": a.match,
                      "gain_min": round(float(gain.min()), 4), "gain_max": round(float(gain.max()), 4),
                      "deviation_first": round(float(dev[0]), 4)}))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
