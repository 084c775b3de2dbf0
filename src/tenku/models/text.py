"""Text encoders behind one small interface: ``.dim`` and ``.encode(prompts) -> (emb (B,L,dim), mask (B,L))``.

- :class:`ByteTextEncoder`: built in, trained with the DiT. Tokens framed by BOS/EOS are embedded and
  run through a few pre-norm transformer layers. The empty prompt (BOS, EOS) is the unconditional
  input for guidance. Two tokenizers (``TextEncoderConfig.tokenizer``):

  - ``"bytes"``: one token per UTF-8 byte (any Unicode text, no vocabulary). A prompt longer than
    ``max_length`` bytes is cut to its first ``max_length`` bytes (at a character boundary).
  - ``"words"``: a prompt is split into words (letters and digits, joined by ``-`` or ``'``) and single
    punctuation marks; a piece whose lower-case form is in ``vocab`` is one token, any other piece is
    its UTF-8 bytes followed by a space byte (so any text still encodes). At most ``max_length``
    tokens are kept. Colour words that differ in one byte ("red", "rod") get unrelated embeddings
    from the start, where bytes give near-identical pooled outputs.
- :class:`HFTextEncoder`: a frozen Hugging Face T5 / UMT5 / CLIP text encoder from a local folder.

:func:`tenku.world.vocabulary.world_vocabulary` lists the words of the world's captions and of the prompt
expander.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.config import TextEncoderConfig
from tenku.errors import ModelFolderError, TenkuError

BOS, EOS, PAD = 256, 257, 258
VOCAB_SIZE = 259  # 256 byte values + BOS, EOS, PAD


_PIECE = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*|[^\s]")


def word_pieces(text: str) -> list[str]:
    """The pieces the ``"words"`` tokenizer splits ``text`` into: words (with inner - and ') and single signs."""
    return _PIECE.findall(text)


def word_tokenize(prompts: list[str], vocab: dict[str, int], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> ids (B, L) int64 and mask (B, L) bool with the ``"words"`` tokenizer (module docstring).
    ``vocab``: lower-case piece -> token id (>= VOCAB_SIZE). L = the longest prompt's tokens + 2."""
    if isinstance(prompts, str):
        raise TypeError("encode() takes a list of prompts, not a single string")
    seqs = []
    for p in prompts:
        toks: list[int] = []
        for piece in _PIECE.findall(p):
            wid = vocab.get(piece.lower())
            toks.extend((wid,) if wid is not None else (*piece.encode("utf-8"), 32))
            if len(toks) >= max_length:
                break
        seqs.append([BOS, *toks[:max_length], EOS])
    return _pad(seqs)


def _pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids, mask


def utf8_truncate(text: str, max_bytes: int) -> bytes:
    """UTF-8 encode ``text`` and keep at most ``max_bytes`` bytes without splitting a character."""
    b = text.encode("utf-8")
    if len(b) <= max_bytes:
        return b
    return b[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def byte_tokenize(prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> ids (B, L) int64 and mask (B, L) bool; L = longest prompt in bytes + 2 (BOS, EOS)."""
    if isinstance(prompts, str):
        raise TypeError("encode() takes a list of prompts, not a single string")
    return _pad([[BOS, *utf8_truncate(p, max_length), EOS] for p in prompts])


class _Block(nn.Module):
    """Pre-norm transformer layer: x + Attn(LN(x)), x + MLP(LN(x)); padded keys are masked out."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.num_heads, D // self.num_heads).unbind(2)
        q, k, v = (a.transpose(1, 2) for a in (q, k, v))  # (B, heads, L, head_dim)
        attn_mask = mask[:, None, None, :]  # (B, 1, 1, L): every query sees only real keys
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, heads, L, head_dim)
        x = x + self.proj(a.transpose(1, 2).reshape(B, L, D))  # (B, L, D)
        return x + self.mlp(self.norm2(x))  # (B, L, D)


class ByteTextEncoder(nn.Module):
    """Transformer text encoder over byte tokens, or word tokens with bytes for unknown words; see the
    module docstring."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        if cfg.dim % cfg.num_heads:
            raise ValueError(f"TextEncoderConfig: dim {cfg.dim} is not divisible by num_heads {cfg.num_heads}")
        if cfg.tokenizer not in ("bytes", "words"):
            raise ValueError(f"TextEncoderConfig: tokenizer {cfg.tokenizer!r} is not 'bytes' or 'words'")
        if cfg.tokenizer == "words" and not cfg.vocab:
            raise ValueError("TextEncoderConfig: tokenizer 'words' needs a vocab (e.g. "
                             "tenku.world.vocabulary.world_vocabulary())")
        if cfg.tokenizer == "bytes" and cfg.vocab:
            raise ValueError("TextEncoderConfig: a vocab is only used with tokenizer 'words'")
        vocab = [w.lower() for w in cfg.vocab]
        if len(set(vocab)) != len(vocab) or any(not _PIECE.fullmatch(w) for w in vocab):
            raise ValueError("TextEncoderConfig: vocab entries must be distinct single words or punctuation marks")
        self.cfg = cfg
        self.dim = cfg.dim
        self.max_length = cfg.max_length
        self.word_ids = {w: VOCAB_SIZE + i for i, w in enumerate(vocab)}
        self.tok_emb = nn.Embedding(VOCAB_SIZE + len(vocab), cfg.dim)
        self.pos_emb = nn.Parameter(torch.zeros(cfg.max_length + 2, cfg.dim))
        self.blocks = nn.ModuleList(_Block(cfg.dim, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def device(self) -> torch.device:
        return self.pos_emb.device

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        L = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb[:L]  # (B, L, dim)
        for block in self.blocks:
            x = block(x, mask)  # (B, L, dim)
        x = self.norm(x)  # (B, L, dim)
        return x * mask[..., None].to(x.dtype)  # padding positions are exactly zero

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> ids (B, L) int64, mask (B, L) bool, with this encoder's tokenizer."""
        if self.cfg.tokenizer == "words":
            return word_tokenize(prompts, self.word_ids, self.max_length)
        return byte_tokenize(prompts, self.max_length)

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (emb (B, L, dim), mask (B, L) bool), L = the longest prompt in tokens + 2."""
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        return self(ids, mask), mask


_T5_TYPES = ("t5", "mt5", "umt5")
_CLIP_TYPES = ("clip", "clip_text_model")


class HFTextEncoder(nn.Module):
    """A frozen Hugging Face text encoder (T5, mT5, UMT5 encoder or CLIP text model) and its tokenizer,
    both loaded from a local folder with ``transformers`` (the ``hf`` extra). Nothing is downloaded."""

    def __init__(self, path: str | Path, max_length: int = 256, dtype: torch.dtype | None = None):
        super().__init__()
        path = Path(path)
        try:
            import transformers
        except ImportError:
            raise TenkuError(
                "HFTextEncoder needs the `transformers` package: pip install 'tenku[hf]'"
            ) from None
        if not (path / "config.json").is_file():
            raise ModelFolderError(
                f"{path} is not a Hugging Face text encoder folder (no config.json); pass a folder saved "
                "with save_pretrained() holding a T5/UMT5/CLIP text model and its tokenizer"
            )
        try:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as e:
            raise ModelFolderError(f"{path}/config.json is not a Hugging Face model config: {e}") from None
        model_type = getattr(config, "model_type", None)
        if model_type in _T5_TYPES:
            cls = transformers.UMT5EncoderModel if model_type == "umt5" else transformers.T5EncoderModel
            if model_type == "mt5":
                cls = transformers.MT5EncoderModel
            dim = config.d_model
        elif model_type in _CLIP_TYPES:
            cls = transformers.CLIPTextModel
            if model_type == "clip":
                config = config.text_config
            dim = config.hidden_size
        else:
            raise ModelFolderError(
                f"{path} holds a '{model_type}' model; expected a text encoder of type "
                f"{', '.join(_T5_TYPES + _CLIP_TYPES)}"
            )
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = cls.from_pretrained(path, config=config, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ModelFolderError(f"cannot load the text encoder or tokenizer from {path}: {e}") from None
        self.model.eval().requires_grad_(False)
        if dtype is not None:
            self.model.to(dtype)
        self.path = path
        self.model_type = model_type
        self.dim = int(dim)
        limit = getattr(config, "max_position_embeddings", None) if model_type in _CLIP_TYPES else None
        self.max_length = min(max_length, limit) if limit else max_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> "HFTextEncoder":
        return super().train(False)  # frozen: always in eval mode

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (emb (B, L, dim), mask (B, L) bool); at most ``max_length`` tokens per prompt."""
        if isinstance(prompts, str):
            raise TypeError("encode() takes a list of prompts, not a single string")
        tok = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        ids = tok["input_ids"].to(self.device)
        mask = tok["attention_mask"].to(self.device).bool()
        out = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # (B, L, dim)
        return out * mask[..., None].to(out.dtype), mask
