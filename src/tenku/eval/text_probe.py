"""Does a text encoder separate what the world's captions say? A linear probe on its pooled output.

For each attribute (colour, shape, direction, background, count) a multinomial logistic regression is
fitted on the masked-mean pooled embeddings (the vector the DiT's adaLN path receives) of captions of
training-split world clips and scored on captions of held-out clips (``test_id``: unseen seeds, so
unseen phrasings and combinations of phrases). A caption enters an attribute's probe only when it
states exactly one value of it (read with :func:`tenku.world.captions.parse_caption`); the count comes
from the clip itself and is probed on long captions (the only level that states it). Features are
standardised with the training set's mean and deviation, the fit is full-batch L-BFGS with a small L2
penalty, so the result depends on the encoder and the caption seeds only.

    python -m tenku.eval.text_probe --model src/tenku/assets/tenku-world-tiny
    python -m tenku.eval.text_probe --tokenizer words --fit-steps 300     # a fresh encoder, briefly trained
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch

ATTRIBUTES = ("color", "shape", "direction", "background", "count")
_PARSED = {"color": "colors", "shape": "shapes", "direction": "directions", "background": "backgrounds"}


def probe_captions(split: str, clips: int, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """attribute -> [(caption, label)] from ``clips`` world clips of ``split`` (every caption level)."""
    from tenku.world.captions import parse_caption
    from tenku.world.make import make_world_clip

    out: dict[str, list[tuple[str, str]]] = {a: [] for a in ATTRIBUTES}
    for i in range(clips):
        clip = make_world_clip(seed, split, i)
        for level, text in clip.captions.items():
            said = parse_caption(text)
            for attr, key in _PARSED.items():
                if len(said[key]) == 1:
                    out[attr].append((text, str(next(iter(said[key])))))
            if level == "long":
                out["count"].append((text, str(len(clip.ground_truth["objects"]))))
    return out


@torch.no_grad()
def pooled_embeddings(encoder, texts: list[str], batch: int = 256) -> torch.Tensor:
    """(N, dim) masked mean of ``encoder.encode`` over each text's tokens, float32 on the CPU."""
    rows = []
    for i in range(0, len(texts), batch):
        emb, mask = encoder.encode(texts[i:i + batch])  # (B, L, dim), (B, L)
        m = mask[..., None].to(emb.dtype)
        rows.append(((emb * m).sum(1) / m.sum(1).clamp(min=1)).float().cpu())  # (B, dim)
    return torch.cat(rows)


def linear_probe(x_train: torch.Tensor, y_train: list[str], x_test: torch.Tensor, y_test: list[str],
                 l2: float = 1e-4, iters: int = 200) -> float:
    """Held-out accuracy of a multinomial logistic regression fitted on (x_train, y_train). A test label
    never seen in training counts as wrong."""
    classes = sorted(set(y_train))
    index = {c: k for k, c in enumerate(classes)}
    mu, sd = x_train.mean(0), x_train.std(0).clamp(min=1e-8)
    xtr, xte = (((x - mu) / sd).double() for x in (x_train, x_test))
    ytr = torch.tensor([index[c] for c in y_train])
    w = torch.zeros(xtr.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, ytr) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = (xte @ w + b).argmax(1).tolist()
    return sum(classes[p] == y for p, y in zip(pred, y_test)) / max(len(y_test), 1)


def probe_encoder(encoder, train_clips: int = 600, test_clips: int = 300, seed: int = 0,
                  attributes: tuple[str, ...] = ATTRIBUTES) -> dict[str, dict]:
    """attribute -> {"accuracy", "train", "test", "classes"}: the held-out linear-probe accuracy of
    ``encoder``'s pooled output on world captions (training split clips -> test_id clips)."""
    train, test = probe_captions("train", train_clips, seed), probe_captions("test_id", test_clips, seed)
    was_training = getattr(encoder, "training", False)
    if hasattr(encoder, "eval"):
        encoder.eval()
    try:
        out = {}
        for attr in attributes:
            (tr_x, tr_y), (te_x, te_y) = (tuple(zip(*d[attr])) for d in (train, test))
            acc = linear_probe(pooled_embeddings(encoder, list(tr_x)), list(tr_y),
                               pooled_embeddings(encoder, list(te_x)), list(te_y))
            out[attr] = {"accuracy": acc, "train": len(tr_y), "test": len(te_y), "classes": len(set(tr_y))}
        return out
    finally:
        if was_training:
            encoder.train()


def fit_on_captions(encoder, steps: int = 300, clips: int = 600, batch: int = 64, lr: float = 1e-3,
                    seed: int = 0) -> list[float]:
    """Train ``encoder`` briefly so that its pooled output states the captions' attributes: linear heads
    on the masked-mean pooled output, cross-entropy on every attribute a caption states (the labels of
    :func:`probe_captions`, training-split clips only), AdamW. The heads are thrown away afterwards;
    :func:`probe_encoder` fits new ones on the frozen encoder and scores held-out clips. Returns the
    loss of every step."""
    data = probe_captions("train", clips, seed)
    labels: dict[str, dict[str, str]] = {}
    for attr, rows in data.items():
        for text, label in rows:
            labels.setdefault(text, {})[attr] = label
    texts = sorted(labels)
    classes = {a: sorted({lab[a] for lab in labels.values() if a in lab}) for a in ATTRIBUTES}
    target = {a: torch.tensor([classes[a].index(labels[t][a]) if a in labels[t] else -100 for t in texts])
              for a in ATTRIBUTES}  # -100: the caption does not state it
    heads = torch.nn.ModuleDict({a: torch.nn.Linear(encoder.dim, len(classes[a])) for a in ATTRIBUTES})
    params = [p for p in encoder.parameters() if p.requires_grad] + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    encoder.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(texts), (batch,), generator=gen)
        emb, mask = encoder.encode([texts[i] for i in idx.tolist()])  # (B, L, dim), (B, L)
        m = mask[..., None].to(emb.dtype)
        pooled = (emb * m).sum(1) / m.sum(1).clamp(min=1)  # (B, dim)
        loss = sum(torch.nn.functional.cross_entropy(heads[a](pooled), target[a][idx], ignore_index=-100)
                   for a in ATTRIBUTES if bool((target[a][idx] >= 0).any()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    encoder.eval()
    return losses


def _load(model: str | None, tokenizer: str, seed: int) -> Callable:
    if model:
        from pathlib import Path

        from tenku.models.hub import load_component

        path = Path(model)
        return load_component(path / "text_encoder" if (path / "text_encoder").is_dir() else path)
    from tenku.config import WORLD_TINY_MODEL, TextEncoderConfig
    from tenku.models.text import ByteTextEncoder
    from tenku.world.vocabulary import world_vocabulary

    extra = dict(tokenizer="words", vocab=world_vocabulary()) if tokenizer == "words" else {}
    torch.manual_seed(seed)
    return ByteTextEncoder(TextEncoderConfig(**{**WORLD_TINY_MODEL["text"], **extra}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a pipeline or text-encoder folder (default: a freshly initialised encoder)")
    ap.add_argument("--tokenizer", choices=("bytes", "words"), default="words",
                    help="for a fresh encoder: its tokenizer (world-tiny sizes)")
    ap.add_argument("--seed", type=int, default=0, help="initialisation seed of a fresh encoder")
    ap.add_argument("--train-clips", type=int, default=600)
    ap.add_argument("--test-clips", type=int, default=300)
    ap.add_argument("--fit-steps", type=int, default=0,
                    help="first train the encoder this many steps with fit_on_captions (0: probe it as it is)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    enc = _load(args.model, args.tokenizer, args.seed)
    if args.fit_steps:
        fit_on_captions(enc, steps=args.fit_steps, clips=args.train_clips, seed=args.seed)
    print(json.dumps(probe_encoder(enc, args.train_clips, args.test_clips), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
