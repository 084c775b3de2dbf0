"""Spacetime-patch diffusion transformer (DiT) over VAE latents, with packed variable-size batches.

``forward`` takes a list of latents of different (T, H, W); each is cut into (pt, ph, pw) patches and
every sample's tokens are concatenated into one sequence (no padding). Linear and MLP layers run on the
packed tokens; self-attention runs within each sample (samples with equal token count share one SDPA
call) and cross-attention attends to the sample's own text. Positions are 3D RoPE on q/k computed from
each sample's true (t, h, w) patch grid, so unseen sizes work. Conditioning is adaLN-Zero on
timestep embedding + pooled text; tokens of frames flagged clean are modulated as t = 0.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from tenku.config import DiTConfig
from tenku.errors import UnsupportedSizeError
from tenku.models.layers import TimestepEmbedder, apply_rope, rope_axes_split, rope_table_3d


class Packed:
    """Bookkeeping for one packed batch: token order, groups of equal length, modulation layout.

    Samples are laid out sorted by token count so each group of equal length is a contiguous slice
    of the packed sequence and reshapes to (G, L, ...) without copying. When every sample has the
    same patch grid, modulation broadcasts per (sample, frame) over a (B, Tp, Hp*Wp, D) view of the
    tokens; otherwise it is gathered per token over the (N, D) tokens."""

    def __init__(self, grids: list[tuple[int, int, int]], clean_frames: list[torch.Tensor], device: torch.device):
        self.grids = grids
        self.lengths = [tp * hp * wp for tp, hp, wp in grids]
        self.order = sorted(range(len(grids)), key=lambda i: self.lengths[i])  # packed position -> sample
        self.offsets: dict[int, int] = {}
        self.groups: list[tuple[int, int, list[int]]] = []  # (start, L, sample ids) contiguous slices
        off = 0
        for i in self.order:
            L = self.lengths[i]
            if self.groups and self.groups[-1][1] == L:
                self.groups[-1][2].append(i)
            else:
                self.groups.append((off, L, [i]))
            self.offsets[i] = off
            off += L
        self.total = off
        self.uniform = len(set(grids)) == 1  # one grid: one group, packed order == sample order
        # per group, how to pick its samples' text rows: all of them (None), a slice when the ids are
        # consecutive, else an index
        self.text_rows: list[slice | torch.Tensor | None] = [
            None if ids == list(range(len(grids)))
            else slice(ids[0], ids[0] + len(ids)) if ids == list(range(ids[0], ids[0] + len(ids)))
            else torch.tensor(ids, device=device)
            for _, _, ids in self.groups
        ]
        # modulation table row per (sample, frame): 2*i for the noisy timestep, 2*i + 1 for clean (t = 0)
        frame_rows = [2 * i + clean_frames[i].to(device=device, dtype=torch.long) for i in self.order]  # (Tp_i,)
        if self.uniform:
            tp, hp, wp = grids[0]
            self.view: tuple[int, ...] = (len(grids), tp, hp * wp)
            self.rows = torch.stack(frame_rows)[:, :, None]  # (B, Tp, 1)
        else:
            self.view = (self.total,)
            self.rows = torch.cat(
                [r.repeat_interleave(self.lengths[i] // r.numel()) for r, i in zip(frame_rows, self.order)]
            )  # (N,)

    def rows_of(self, x: torch.Tensor, start: int, length: int) -> torch.Tensor:
        """Packed rows [start, start + length) of x. A group spanning every token takes x itself: slicing it
        would cost a zero-filled full-size gradient buffer and a copy in the backward pass."""
        return x if start == 0 and length == self.total else x[start : start + length]

    def modulation(self, table: torch.Tensor, parts: int, scale_parts: tuple[int, ...]) -> list[torch.Tensor]:
        """table (2B, parts*D) -> ``parts`` tensors broadcastable to the (*view, D) token view, with
        1 added to the scale parts (so ``addcmul(shift, x, scale)`` is x * (1 + scale) + shift)."""
        t = table.unflatten(-1, (parts, -1))  # (2B, parts, D)
        if scale_parts:
            one = torch.zeros(parts, 1, device=t.device, dtype=t.dtype)
            one[list(scale_parts)] = 1.0
            t = t + one
        return list(t.transpose(0, 1)[:, self.rows].unbind(0))  # each (*rows.shape, D)


class Attention(nn.Module):
    """Multi-head self-attention with fused QKV, optional QK RMSNorm and 3D RoPE, per sample."""

    def __init__(self, dim: int, heads: int, qk_norm: bool):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pk: Packed, rope: torch.Tensor) -> torch.Tensor:
        n, d = x.shape
        q, k, v = self.qkv(x).view(n, 3, self.heads, self.head_dim).unbind(1)  # each (N, H, hd)
        q = apply_rope(self.q_norm(q), rope)  # (N, H, hd)
        k = apply_rope(self.k_norm(k), rope)
        out = []
        for start, L, ids in pk.groups:  # attention never crosses samples
            g = len(ids)
            qg, kg, vg = (pk.rows_of(t, start, g * L).view(g, L, self.heads, self.head_dim).transpose(1, 2)
                          for t in (q, k, v))
            o = F.scaled_dot_product_attention(qg, kg, vg)  # (G, H, L, hd)
            out.append(o.transpose(1, 2).reshape(g * L, d))
        return self.proj(torch.cat(out) if len(out) > 1 else out[0])  # (N, D)


class CrossAttention(nn.Module):
    """Tokens attend to their own sample's text (key padding mask), plus one learned always-visible
    null token so empty prompts are well defined."""

    def __init__(self, dim: int, heads: int, qk_norm: bool):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def text_kv(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (normed) and values of the text, each (B, S, H, hd): they depend only on the prompt."""
        b, s, _ = ctx.shape
        k, v = self.kv(ctx).view(b, s, 2, self.heads, self.head_dim).unbind(2)  # each (B, S, H, hd)
        return self.k_norm(k), v

    def forward(
        self, x: torch.Tensor, pk: Packed, ctx: torch.Tensor, ctx_bias: torch.Tensor | None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None, text_lens: tuple[int, ...] | None = None,
    ) -> torch.Tensor:
        # x: (N, D) packed; ctx: (B, S, D); ctx_bias: (B, 1, 1, S) additive key mask (0 visible, -inf padding)
        # or None (all visible); kv: text_kv(ctx) if precomputed; text_lens: each sample's visible text
        # positions when they are a prefix (then inference attends to exactly those, with no mask)
        n, d = x.shape
        q = self.q_norm(self.q(x).view(n, self.heads, self.head_dim))  # (N, H, hd)
        k, v = self.text_kv(ctx) if kv is None else kv  # each (B, S, H, hd)
        split = ctx_bias is not None and text_lens is not None and not torch.is_grad_enabled()
        out = []
        for (start, L, ids), rows in zip(pk.groups, pk.text_rows):
            g = len(ids)
            if split:  # padded prompts, inference: runs of samples with equal text length, keys cut to it
                j = 0
                while j < g:
                    e, s = j + 1, text_lens[ids[j]]
                    while e < g and text_lens[ids[e]] == s and ids[e] == ids[e - 1] + 1:
                        e += 1
                    qg = q[start + j * L : start + e * L].view(e - j, L, self.heads, self.head_dim).transpose(1, 2)
                    kg, vg = (t[ids[j] : ids[j] + e - j, :s].transpose(1, 2) for t in (k, v))  # (G', H, s, hd)
                    o = F.scaled_dot_product_attention(qg, kg, vg)  # (G', H, L, hd)
                    out.append(o.transpose(1, 2).reshape((e - j) * L, d))
                    j = e
                continue
            qg = pk.rows_of(q, start, g * L).view(g, L, self.heads, self.head_dim).transpose(1, 2)  # (G, H, L, hd)
            kg, vg, mg = k, v, ctx_bias  # the whole batch's text (a group of every sample)
            if rows is not None:
                kg, vg, mg = k[rows], v[rows], None if ctx_bias is None else ctx_bias[rows]
            kg, vg = kg.transpose(1, 2), vg.transpose(1, 2)  # (G, H, S, hd)
            mask = None if mg is None or mg.dtype == torch.bool else mg.to(qg.dtype)  # (G, 1, 1, S) bias
            o = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=mask)  # (G, H, L, hd)
            out.append(o.transpose(1, 2).reshape(g * L, d))
        return self.proj(torch.cat(out) if len(out) > 1 else out[0])  # (N, D)


class DiTBlock(nn.Module):
    """adaLN-Zero block: self-attention and MLP modulated by (shift, scale, gate); cross-attention to text
    between them (its output projection starts at zero, so a fresh block is the identity)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qk_norm: bool, shared_adaln: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads, qk_norm)
        self.norm_x = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-6)
        self.cross = CrossAttention(dim, heads, qk_norm)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        if shared_adaln:  # adaLN-single: the model's shared projection plus this block's learned offset
            self.adaLN_modulation = None
            self.mod_bias = nn.Parameter(torch.zeros(6 * dim))
        else:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def modulation(self, cond: torch.Tensor, pk: Packed) -> list[torch.Tensor]:
        """Per-token (shift, 1 + scale, gate) x 2, each broadcastable to the (*pk.view, D) token view.
        ``cond``: (2B, D) rows [t_i, t=0] per sample, or with shared adaLN the shared projection (2B, 6D).
        The Linear runs on 2B rows only."""
        table = cond + self.mod_bias if self.adaLN_modulation is None else self.adaLN_modulation(cond)  # (2B, 6D)
        return pk.modulation(table, 6, (1, 4))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, pk: Packed, rope: torch.Tensor, ctx: torch.Tensor,
        ctx_bias: torch.Tensor | None, kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        text_lens: tuple[int, ...] | None = None,
    ) -> torch.Tensor:
        # x: (N, D) packed tokens; xv: the same memory viewed as (*pk.view, D) for the modulation
        n, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond, pk)
        xv = x.view(*pk.view, d)
        h = torch.addcmul(shift1, self.norm1(xv), scale1)  # (*view, D)
        xv = torch.addcmul(xv, gate1, self.attn(h.reshape(n, d), pk, rope).view_as(xv))
        xv = xv + self.cross(self.norm_x(xv).reshape(n, d), pk, ctx, ctx_bias, kv, text_lens).view_as(xv)
        h = torch.addcmul(shift2, self.norm2(xv), scale2)
        xv = torch.addcmul(xv, gate2, self.mlp(h))
        return xv.reshape(n, d)  # (N, D)


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, pk: Packed) -> torch.Tensor:
        n, d = x.shape
        shift, scale = pk.modulation(self.adaLN_modulation(cond), 2, (1,))  # broadcastable to (*view, D)
        h = torch.addcmul(shift, self.norm(x.view(*pk.view, d)), scale)
        return self.linear(h).reshape(n, -1)  # (N, pt*ph*pw*C)


@dataclasses.dataclass
class TextContext:
    """What the DiT computes from the prompt alone (:meth:`DiT.encode_text`): reused across sampler steps.
    pooled (B, D); ctx (B, 1+L, D) with the null token first; ctx_mask (B, 1+L) bool; kv: per block, the
    cross-attention keys and values, each (B, 1+L, H, hd). ``attn_bias``: the key mask as an additive
    (B, 1, 1, 1+L) bias (0 visible, -inf padding), None when nothing is padded; ``text_lens``: visible
    positions per sample when each sample's are a prefix, else None."""

    text: torch.Tensor
    text_mask: torch.Tensor
    pooled: torch.Tensor
    ctx: torch.Tensor
    ctx_mask: torch.Tensor
    kv: list[tuple[torch.Tensor, torch.Tensor]]
    attn_bias: torch.Tensor | None
    text_lens: tuple[int, ...] | None


class DiT(nn.Module):
    """Diffusion transformer over packed spacetime patches. See the module docstring."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d, h = cfg.hidden_size, cfg.num_heads
        if d % h:
            raise ValueError(f"hidden_size {d} must be divisible by num_heads {h}")
        self.head_dim = d // h
        self.rope_axes = rope_axes_split(self.head_dim, cfg.rope_axes)
        pt, ph, pw = cfg.patch_size
        self.patch_dim = cfg.in_channels * pt * ph * pw
        self.x_embedder = nn.Linear(self.patch_dim, d)
        self.t_embedder = TimestepEmbedder(d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.text_pool = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.null_text = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList(
            [DiTBlock(d, h, cfg.mlp_ratio, cfg.qk_norm, cfg.shared_adaln) for _ in range(cfg.depth)]
        )
        self.adaLN_shared = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d)) if cfg.shared_adaln else None
        self.final_layer = FinalLayer(d, self.patch_dim)
        self._rope_cache: dict[tuple, torch.Tensor] = {}
        self.initialize_weights()

    def initialize_weights(self) -> None:
        def _basic_init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic_init)
        nn.init.normal_(self.null_text, std=0.02)
        for mlp in (self.t_embedder.mlp, self.text_pool):
            nn.init.normal_(mlp[0].weight, std=0.02)
            nn.init.normal_(mlp[2].weight, std=0.02)
        for block in self.blocks:  # adaLN-Zero: gates and shifts/scales start at 0 -> identity block
            ada = block.adaLN_modulation if block.adaLN_modulation is not None else self.adaLN_shared
            nn.init.zeros_(ada[-1].weight)
            nn.init.zeros_(ada[-1].bias)
            nn.init.zeros_(block.cross.proj.weight)
            nn.init.zeros_(block.cross.proj.bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    # ---- patches -----------------------------------------------------------------------------
    def grid(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, T, H, W) latent shape -> (Tp, Hp, Wp) patch grid, with a clear error if it does not divide."""
        pt, ph, pw = self.cfg.patch_size
        if len(shape) != 4 or shape[0] != self.cfg.in_channels:
            raise UnsupportedSizeError(
                f"each latent must be (C={self.cfg.in_channels}, T, H, W), got shape {tuple(shape)}"
            )
        _, t, h, w = shape
        if t % pt or h % ph or w % pw or min(t, h, w) < 1:
            raise UnsupportedSizeError(
                f"latent of T={t}, H={h}, W={w} does not divide into patches of {pt}x{ph}x{pw}; "
                f"choose a frame count and size whose latent is a multiple of the patch size"
            )
        return t // pt, h // ph, w // pw

    def patchify(self, x: torch.Tensor, grid: tuple[int, int, int] | None = None) -> torch.Tensor:
        """(C, T, H, W) -> (Tp*Hp*Wp, C*pt*ph*pw) tokens in t-major order; a stacked batch (B, C, T, H, W)
        of one ``grid`` -> (B*Tp*Hp*Wp, C*pt*ph*pw), the samples one after another."""
        pt, ph, pw = self.cfg.patch_size
        b, c = (1, *x.shape[:1]) if x.ndim == 4 else x.shape[:2]
        tp, hp, wp = self.grid(tuple(x.shape[-4:])) if grid is None else grid
        x = x.reshape(b, c, tp, pt, hp, ph, wp, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, Tp, Hp, Wp, C, pt, ph, pw)
        return x.reshape(b * tp * hp * wp, self.patch_dim)

    def unpatchify(self, tokens: torch.Tensor, grid: tuple[int, int, int], batch: int | None = None) -> torch.Tensor:
        """(Tp*Hp*Wp, C*pt*ph*pw) -> (C, T, H, W); with ``batch``, (B*Tp*Hp*Wp, ...) -> (B, C, T, H, W)."""
        pt, ph, pw = self.cfg.patch_size
        tp, hp, wp = grid
        c = self.cfg.in_channels
        b = 1 if batch is None else batch
        x = tokens.reshape(b, tp, hp, wp, c, pt, ph, pw)
        x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, Tp, pt, Hp, ph, Wp, pw)
        x = x.reshape(b, c, tp * pt, hp * ph, wp * pw)
        return x if batch is not None else x[0]

    def _rope(self, grids: tuple[tuple[int, int, int], ...], device: torch.device) -> torch.Tensor:
        """RoPE table (N, 2, hd) of the packed tokens of samples with these grids, in packing order;
        cached per layout (a sampler calls the model with the same layout at every step)."""
        key = (grids, str(device))
        if key not in self._rope_cache:
            if len(self._rope_cache) > 64:
                self._rope_cache.clear()
            one = {g: rope_table_3d(g, self.rope_axes, self.cfg.rope_theta, device) for g in set(grids)}
            self._rope_cache[key] = torch.cat([one[g] for g in grids]) if len(grids) > 1 else one[grids[0]]
        return self._rope_cache[key]

    # ---- forward -----------------------------------------------------------------------------
    def forward(
        self,
        x: list[torch.Tensor],
        t: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        clean: list[torch.Tensor] | None = None,
        text_context: TextContext | None = None,
    ) -> list[torch.Tensor]:
        """x: list of B latents (C, T_i, H_i, W_i); t: (B,) in [0, 1]; text: (B, L, text_dim);
        text_mask: (B, L) bool; clean: optional list of (T_i,) bool. Returns B velocities (C, T_i, H_i, W_i).
        ``text_context``: ``encode_text(text, text_mask)`` computed once and reused across sampler steps
        (the text projections and every block's cross-attention keys/values are then not recomputed).

        A token is clean when every latent frame of its temporal patch is clean."""
        if isinstance(x, torch.Tensor):
            x = list(x.unbind(0)) if x.ndim == 5 else [x]
        b = len(x)
        t = torch.as_tensor(t, device=x[0].device).reshape(-1)
        if t.numel() == 1 and b > 1:
            t = t.expand(b)
        if t.shape[0] != b or text.shape[0] != b or text_mask.shape != text.shape[:2]:
            raise UnsupportedSizeError(
                f"batch mismatch: {b} latents, t {tuple(t.shape)}, text {tuple(text.shape)}, "
                f"text_mask {tuple(text_mask.shape)}; expected t (B,), text (B, L, dim), text_mask (B, L)"
            )
        if text.shape[-1] != self.cfg.text_dim:
            raise UnsupportedSizeError(f"text width {text.shape[-1]} != the model's text_dim {self.cfg.text_dim}")
        device = x[0].device
        grids = [self.grid(tuple(xi.shape)) for xi in x]
        pt = self.cfg.patch_size[0]
        clean_frames = []  # per sample: (Tp,) bool, a patch-frame is clean when all its frames are
        for i, (xi, g) in enumerate(zip(x, grids)):
            if clean is None or clean[i] is None:
                clean_frames.append(torch.zeros(g[0], dtype=torch.bool))
                continue
            ci = torch.as_tensor(clean[i]).bool()
            if ci.shape != (xi.shape[1],):
                raise UnsupportedSizeError(f"clean[{i}] must be ({xi.shape[1]},) bool, got {tuple(ci.shape)}")
            clean_frames.append(ci.view(g[0], pt).all(dim=1))
        pk = Packed(grids, clean_frames, device)

        if pk.uniform and b > 1:  # one grid: patchify the batch in one copy (packed order == sample order)
            tokens = self.patchify(torch.stack(x), grids[0])  # (N, patch_dim)
        else:
            tokens = torch.cat([self.patchify(x[i]) for i in pk.order])  # (N, patch_dim) packed, sorted by length
        h = self.x_embedder(tokens.to(self.x_embedder.weight.dtype))  # (N, D)
        rope = self._rope(tuple(grids[i] for i in pk.order), device)  # (N, 2, hd) cos / signed sin

        tc = text_context
        if tc is None or tc.text is not text or tc.text_mask is not text_mask:
            tc = self.encode_text(text, text_mask, with_kv=False)
        pooled, ctx = tc.pooled, tc.ctx  # (B, D), (B, 1+L, D)
        attn_bias, text_lens = tc.attn_bias, tc.text_lens  # no padding: cross-attention needs no mask
        kvs = tc.kv or [None] * len(self.blocks)
        temb = self.t_embedder(torch.stack([t, torch.zeros_like(t)], dim=1).reshape(-1))  # (2B,) -> (2B, D)
        cond = temb + pooled.repeat_interleave(2, dim=0)  # (2B, D): rows [2i] = t_i, [2i+1] = clean (t = 0)

        block_cond = cond if self.adaLN_shared is None else self.adaLN_shared(cond)  # (2B, D) or (2B, 6D)
        for block, kv in zip(self.blocks, kvs):
            if self.cfg.grad_checkpointing and torch.is_grad_enabled():
                h = checkpoint(block, h, block_cond, pk, rope, ctx, attn_bias, kv, text_lens, use_reentrant=False)
            else:
                h = block(h, block_cond, pk, rope, ctx, attn_bias, kv, text_lens)  # (N, D)
        out = self.final_layer(h, cond, pk)  # (N, patch_dim)

        if pk.uniform and b > 1:
            return [o.to(xi.dtype) for o, xi in zip(self.unpatchify(out, grids[0], b).unbind(0), x)]
        result: list[torch.Tensor] = [None] * b  # type: ignore[list-item]
        for i in pk.order:
            off, n = pk.offsets[i], pk.lengths[i]
            result[i] = self.unpatchify(out[off : off + n], grids[i]).to(x[i].dtype)  # (C, T, H, W)
        return result

    def encode_text(self, text: torch.Tensor, text_mask: torch.Tensor, with_kv: bool = True) -> TextContext:
        """The prompt-only part of ``forward``, to compute once per generation and pass as ``text_context``
        to every step. text: (B, L, text_dim); text_mask: (B, L) bool."""
        dtype = self.x_embedder.weight.dtype
        b = text.shape[0]
        mask = text_mask.bool()
        m = mask.unsqueeze(-1).to(text.dtype)
        pooled = (text * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, text_dim) masked mean
        pooled = self.text_pool(pooled.to(dtype))  # (B, D)
        ctx = torch.cat([self.null_text.expand(b, -1, -1).to(dtype), self.text_proj(text.to(dtype))], dim=1)
        ctx_mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=text.device), mask], dim=1)  # (B, 1+L)
        kv = [blk.cross.text_kv(ctx) for blk in self.blocks] if with_kv else []
        bias = lens = None
        if not bool(ctx_mask.all()):  # padded prompts: the key mask as a bias, made once per prompt
            bias = torch.zeros(ctx_mask.shape, dtype=ctx.dtype, device=ctx.device).masked_fill(~ctx_mask, float("-inf"))
            bias = bias[:, None, None, :]  # (B, 1, 1, 1+L)
            n = ctx_mask.sum(1)  # (B,)
            if bool((ctx_mask == (torch.arange(ctx_mask.shape[1], device=n.device) < n[:, None])).all()):
                lens = tuple(int(v) for v in n.tolist())  # every sample's visible text is a prefix
        return TextContext(text, text_mask, pooled, ctx, ctx_mask, kv, bias, lens)

    # ---- accounting (nanoGPT style) ----------------------------------------------------------
    def num_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def flops_per_token(self, seq_len: int, text_len: int = 0, training: bool = True) -> float:
        """Matmul FLOPs per token: 2 * (weights a token passes through) + attention scores and values,
        times 3 for training (forward + backward). Per-sample work (adaLN on 2B rows, text projection)
        is amortised away; ``seq_len`` is the token count of the sample's self-attention."""
        d, L = self.cfg.hidden_size, self.cfg.depth
        hidden = int(d * self.cfg.mlp_ratio)
        per_block = 3 * d * d + d * d + d * d + d * d + 2 * d * hidden  # qkv, proj, cross q, cross proj, mlp
        dense = L * per_block + self.patch_dim * d + d * self.patch_dim
        attn = L * 2 * d * (seq_len + text_len + 1)  # q.k and a.v, self + cross
        fwd = 2 * dense + 2 * attn
        return float(fwd * (3 if training else 1))

    def estimate_mfu(self, tokens_per_s: float, seq_len: int, text_len: int, peak_flops: float) -> float:
        """Model FLOPs utilisation of a training run: achieved FLOP/s / peak FLOP/s."""
        return self.flops_per_token(seq_len, text_len) * tokens_per_s / peak_flops


def compile_dit(model: DiT, **kwargs) -> DiT:
    """Compile every block and the final layer with ``torch.compile`` (``kwargs`` go to it, e.g.
    ``backend``, ``mode``, ``dynamic``), in place: parameters and ``state_dict`` keys are unchanged and the
    packing, RoPE and text bookkeeping stay eager. Each new token layout compiles on its first call
    (minutes on a small CPU), so it pays for long runs and on GPUs, not for one short clip."""
    for block in model.blocks:
        block.compile(**kwargs)
    model.final_layer.compile(**kwargs)
    return model
