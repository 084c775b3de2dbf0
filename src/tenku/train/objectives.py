"""Training objectives as modules, so DDP / FSDP wrap the model and its loss together.

- :class:`VAEObjective`: L1 + L2 reconstruction, a gradient (edge) term in time and space, and a
  small KL term, each a per-sample mean, averaged over the batch.
- :class:`DiTObjective`: rectified flow (``x_t = (1 - t) x0 + t noise``, target ``v = noise - x0``)
  on packed variable-size latents, with the byte text encoder trained alongside. A share of the
  samples gets random frame-conditioning tasks: some latent frames are given clean (image-to-video,
  extend forward, extend backward, connect / loop) and the loss covers only the other frames.

Every random choice of sample ``j`` comes from its own generator (see ``buckets.sample_generator``),
so the loss of a global batch is the same however many processes share it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

COND_TASKS = ("image_to_video", "extend_forward", "extend_backward", "connect")


class VAEObjective(nn.Module):
    def __init__(self, vae: nn.Module, l1: float, l2: float, edge: float, kl: float, posterior_noise: float = 1.0,
                 color: float = 0.0, motion: float = 0.0):
        super().__init__()
        self.vae = vae
        self.w_l1, self.w_l2, self.w_edge, self.w_kl = l1, l2, edge, kl
        self.posterior_noise = posterior_noise
        self.w_color, self.w_motion = color, motion

    def pixel_weights(self, video: torch.Tensor) -> torch.Tensor | None:
        """(B, 1, T, H, W) weights with mean 1 per clip: more on coloured and on moving pixels (None: uniform)."""
        if not (self.w_color or self.w_motion):
            return None
        w = torch.ones_like(video[:, :1])
        if self.w_color:
            w = w + self.w_color * (video.amax(1, keepdim=True) - video.amin(1, keepdim=True))
        if self.w_motion and video.shape[2] > 1:
            w = w + self.w_motion * (video - video.mean(2, keepdim=True)).abs().mean(1, keepdim=True)
        return w / w.mean(tuple(range(1, w.ndim)), keepdim=True)

    def forward(self, video: torch.Tensor, gens: list[torch.Generator]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # video: (B, 3, T, H, W) in [-1, 1]; gens: one generator per sample (posterior noise)
        self.vae._check_video(video)
        mean, logvar = self.vae.encoder(video).chunk(2, dim=1)  # each (B, C, t, h, w)
        logvar = logvar.clamp(-30.0, 20.0)
        noise = torch.stack([torch.randn(mean.shape[1:], generator=g) for g in gens]).to(mean)
        z = mean + self.posterior_noise * torch.exp(0.5 * logvar) * noise  # (B, C, t, h, w)
        recon = self.vae.decoder(z).float()  # (B, 3, T, H, W)
        dims = tuple(range(1, video.ndim))
        err = recon - video
        l2 = err.pow(2).mean(dims)  # (B,)
        w = self.pixel_weights(video)
        if w is None:
            l1, l2w = err.abs().mean(dims), l2
        else:
            l1, l2w = (w * err.abs()).mean(dims), (w * err.pow(2)).mean(dims)  # (B,)
        edge = torch.zeros_like(l1)
        for d in (2, 3, 4):
            if video.shape[d] > 1:
                edge = edge + (recon.diff(dim=d) - video.diff(dim=d)).abs().mean(dims)
        mean, logvar = mean.float(), logvar.float()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean(tuple(range(1, mean.ndim)))  # (B,)
        loss = self.w_l1 * l1 + self.w_l2 * l2w + self.w_edge * edge + self.w_kl * kl
        with torch.no_grad():
            psnr = 10 * torch.log10(4.0 / l2.clamp_min(1e-10))  # peak-to-peak 2 in [-1, 1]
        return loss.mean(), {"l1": l1.mean().detach(), "l2": l2.mean().detach(), "kl": kl.mean().detach(),
                             "psnr": psnr.mean()}


def sample_t(gen: torch.Generator, tokens: int, flow) -> torch.Tensor:
    """One training timestep of a sample of ``tokens`` tokens (see ``flow.training_timesteps``); shape (1,)."""
    from tenku.flow import training_timesteps

    return training_timesteps(1, tokens, flow, generator=gen)


def sample_clean_mask(gen: torch.Generator, T: int, cond_prob: float) -> tuple[torch.Tensor, str]:
    """(T,) bool mask of given latent frames and the task name ('generate' when none are given)."""
    clean = torch.zeros(T, dtype=torch.bool)
    if T < 2 or torch.rand((), generator=gen).item() >= cond_prob:
        return clean, "generate"
    task = COND_TASKS[int(torch.randint(0, len(COND_TASKS), (1,), generator=gen))]
    if task == "image_to_video":
        clean[0] = True
    elif task == "extend_forward":
        clean[: int(torch.randint(1, T, (1,), generator=gen))] = True
    elif task == "extend_backward":
        clean[T - int(torch.randint(1, T, (1,), generator=gen)):] = True
    else:  # connect two clips / close a loop: given frames at both ends, generate between
        if T < 3:
            clean[0] = True
            return clean, "image_to_video"
        k1 = int(torch.randint(1, T - 1, (1,), generator=gen))
        k2 = int(torch.randint(1, T - k1, (1,), generator=gen))
        clean[:k1] = True
        clean[T - k2:] = True
    return clean, task


def choose_caption(gen: torch.Generator, captions: dict, levels: tuple[str, ...], dropout: float) -> str:
    """A caption level at random among ``levels`` (falling back to any non-empty one); "" with
    probability ``dropout`` (the unconditional branch for classifier-free guidance)."""
    drop = torch.rand((), generator=gen).item() < dropout
    pick = int(torch.randint(0, len(levels), (1,), generator=gen))
    if drop:
        return ""
    text = captions.get(levels[pick], "")
    if not text:
        text = next((captions[k] for k in ("long", "medium", "short") if captions.get(k)), "")
    return text


def object_position_weights(objects: list[torch.Tensor | None] | None, t: torch.Tensor, weight: float,
                            max_t: float = 1.0, estimate: list[torch.Tensor] | None = None
                            ) -> list[torch.Tensor | None] | None:
    """Loss weights of the latent positions, ``1 + weight * share`` (share: each position's object
    pixels, (T_i, H_i, W_i)) for the samples noised to ``t_i <= max_t``, plain (None) above it.

    The share is read from the target, so where ``x_t`` does not yet show where the objects are (high t)
    the weighted loss is minimised by an estimate biased toward "object here": large colour regions.
    Gating by t keeps the weight where ``x_t`` already locates the objects; measured on the default model
    (MODEL_CARD.md), gating at 0.5 leaves objects faint, like no weight, so the default applies it at
    every t. t: (B,).

    ``estimate``: the object shares of the model's own clean estimates (same shapes, no gradient); the
    share is then the larger of the two, so a position where the model draws an object that is not there
    weighs as much as one where it misses an object: where the model draws an object the weight no
    longer depends on the target, and so no longer biases it."""
    if objects is None or not weight:
        return None
    if estimate is not None:
        objects = [None if o is None else torch.maximum(o, e.to(o)) for o, e in zip(objects, estimate)]
    return [None if o is None or float(ti) > max_t else 1 + weight * o for o, ti in zip(objects, t.tolist())]


def first_frame_weights(positions: list[torch.Tensor | None] | None, latents: list[torch.Tensor], weight: float
                        ) -> list[torch.Tensor | None] | None:
    """The position weights with latent frame 0 (the first pixel frame, coded alone) multiplied by
    ``weight``; unchanged at 1. Frame 0 has one neighbouring latent frame, not two, and holds one sharp
    frame, not a group: measured on the default model, its clean estimate's error at t = 0.8 is 0.65 of
    the added noise against 0.42-0.48 for the other frames (MODEL_CARD.md). latents: B x (C, T, H, W)."""
    if weight == 1:
        return positions
    out = []
    for i, z in enumerate(latents):
        p = positions[i] if positions is not None and positions[i] is not None else None
        p = torch.ones(z.shape[1:], device=z.device, dtype=torch.float32) if p is None else p.clone()
        p[0] = p[0] * weight  # (T, H, W): frame 0 only
        out.append(p)
    return out


class DiTObjective(nn.Module):
    def __init__(self, dit: nn.Module, text_encoder: nn.Module, flow_cfg, patch_size: tuple[int, int, int],
                 object_weight: float = 0.0, object_max_t: float = 1.0, first_frame_weight: float = 1.0):
        super().__init__()
        self.first_frame_weight = first_frame_weight  # loss weight of latent frame 0 (see first_frame_weights)
        self.dit = dit
        self.text_encoder = text_encoder
        self.flow = flow_cfg
        self.patch = tuple(patch_size)
        self.object_weight, self.object_max_t = object_weight, object_max_t
        # None, or a function: clean latents (B, C, T, H, W) -> object shares (B, T, H, W) (the frozen VAE's
        # decode and ``latents.object_map``); set by the task for ``object_weight_from="target+estimate"``
        self.estimate_objects = None

    def tokens(self, z: torch.Tensor) -> int:
        _, T, H, W = z.shape
        pt, ph, pw = self.patch
        return (T // pt) * (H // ph) * (W // pw)

    def forward(self, latents: list[torch.Tensor], prompts: list[str], gens: list[torch.Generator],
                cond_prob: float, objects: list[torch.Tensor | None] | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # latents: B tensors (C, T_i, H_i, W_i); prompts: B strings; gens: B generators;
        # objects: None or B object shares (T_i, H_i, W_i) of the latent positions (object_position_weights)
        from tenku.flow import add_noise, flow_matching_loss

        device = latents[0].device
        ts, noises, cleans = [], [], []
        for z, g in zip(latents, gens):  # drawn on the host, from each sample's own generator
            ts.append(sample_t(g, self.tokens(z), self.flow))  # (1,)
            noises.append(draw_noise(z.shape, g, device))  # (C, T, H, W)
            cleans.append(sample_clean_mask(g, z.shape[1], cond_prob)[0])  # (T,)
        noises, cleans = to_device(noises, device), to_device(cleans, device)
        t_vec = torch.cat(ts).to(device)  # (B,)
        xs = add_noise(latents, noises, t_vec, clean=cleans)  # B x (C, T, H, W); given frames stay clean
        emb, mask = self.text_encoder.encode(prompts)  # (B, L, D), (B, L)
        pred = self.dit(xs, t_vec, emb.to(device), mask.to(device), clean=cleans)  # B x (C, T, H, W)
        estimate = None
        if self.estimate_objects is not None and objects is not None and self.object_weight:
            with torch.no_grad():  # the clean estimate x0 = x_t - t v, one decode per grid
                x0_hat = [x.detach().float() - ti.float() * p.detach().float() for x, p, ti in zip(xs, pred, t_vec)]
                estimate = _per_grid(self.estimate_objects, x0_hat)  # B x (T, H, W)
        positions = object_position_weights(objects, t_vec, self.object_weight, self.object_max_t, estimate)
        positions = first_frame_weights(positions, latents, self.first_frame_weight)
        loss = flow_matching_loss(pred, latents, noises, clean=cleans, positions=positions)
        n_cond = sum(bool(c.any()) for c in cleans)
        return loss, {"cond_frac": torch.tensor(n_cond / len(cleans))}


def draw_noise(shape, gen: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise of ``shape`` for the sample whose generator is ``gen``: on the host from
    ``gen`` itself; on a GPU from a device generator seeded by ``gen`` (the host would draw millions of
    values per step), so each sample's noise still depends only on its own stream."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.randn(shape, generator=gen)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return torch.randn(shape, generator=torch.Generator(device).manual_seed(seed), device=device)


def to_device(xs: list[torch.Tensor], device) -> list[torch.Tensor]:
    """``xs`` on ``device``: one copy for a batch of one shape (views of one stacked tensor), else one each."""
    device = torch.device(device)
    there = all(x.device.type == device.type and device.index in (None, x.device.index) for x in xs)
    if not there and len(xs) > 1 and all(x.shape == xs[0].shape for x in xs):
        return list(torch.stack(xs).to(device, non_blocking=True).unbind(0))
    return [x.to(device) for x in xs]


def _per_grid(fn, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """``fn`` on the samples of ``xs`` (B x (C, T, H, W)) stacked by shape, results back in sample order."""
    out: list[torch.Tensor] = [None] * len(xs)  # type: ignore[list-item]
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(xs):
        groups.setdefault(tuple(x.shape), []).append(i)
    for ids in groups.values():
        for i, r in zip(ids, fn(torch.stack([xs[i] for i in ids])).unbind(0)):
            out[i] = r
    return out
