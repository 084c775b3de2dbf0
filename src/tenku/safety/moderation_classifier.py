"""Classifier layers beside the moderation rules.

1. **tenku's own linear classifier**: multinomial logistic regression over word, word-pair and
   character 3-5-gram features of the normalised and lemmatised text, trained with numpy on the
   *train* split of ``tests/data/moderation/`` only (``python benchmarks/moderation_eval.py --train``
   writes ``moderation_model.npz`` beside this file, with the SHA-256 of the file it learned from).
   Its refusal threshold is the lowest one at which 5-fold cross-validation on the train split
   refused no benign prompt.
2. **alt-profanity-check** (optional, ``pip install 'tenku[moderation]'``): a linear SVM over
   offensive language that ships inside its wheel (English). Its flags are filed under
   ``harassment``; its threshold was set on the train split too (``PROFANITY_THRESHOLD``).

Both are loaded on first use and kept; ``layers()`` returns the ones that refuse, as callables
``text -> ModerationResult | None`` (None: allowed by that layer): alt-profanity-check only, see there.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from tenku.safety.moderation_result import ModerationResult, top_category

MODEL_PATH = Path(__file__).with_name("moderation_model.npz")
PROFANITY_THRESHOLD = 0.71  # 0.01 above the highest score of a benign prompt of the train split (0.70)


def features(text: str) -> list[str]:
    """Feature names of one text: words, word pairs and character 3-5-grams of its normalised readings."""
    from tenku.safety.normalize import variants

    feats: set[str] = set()
    for v in variants(text)[:6]:
        words = v.split()
        feats.update("w:" + w for w in words)
        feats.update(f"b:{a}_{b}" for a, b in zip(words, words[1:]))
        for w in words:
            padded = f" {w} "
            for n in (3, 4, 5):
                feats.update("c:" + padded[i:i + n] for i in range(max(1, len(padded) - n + 1)))
    return sorted(feats)


class LinearModel:
    """Softmax regression over sparse binary features (rows scaled to unit length)."""

    def __init__(self, vocab: list[str], classes: list[str], W: np.ndarray, b: np.ndarray, threshold: float,
                 train_sha256: str = ""):
        self.vocab, self.classes, self.W, self.b = vocab, classes, W.astype(np.float32), b.astype(np.float32)
        self.index = {f: i for i, f in enumerate(vocab)}
        self.threshold, self.train_sha256 = float(threshold), train_sha256

    def _rows(self, feats: list[list[str]]) -> np.ndarray:
        X = np.zeros((len(feats), len(self.vocab)), np.float32)
        for r, fs in enumerate(feats):
            idx = [self.index[f] for f in fs if f in self.index]
            if idx:
                X[r, idx] = 1.0 / np.sqrt(len(idx))
        return X

    def proba(self, texts: list[str]) -> np.ndarray:
        """(N, classes) probabilities."""
        z = self._rows([features(t) for t in texts]) @ self.W + self.b
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict(self, text: str) -> tuple[str, float]:
        """(most likely harmful category, probability that the text is harmful)."""
        p = self.proba([text])[0]
        harmful = 1.0 - p[self.classes.index("benign")]
        order = [i for i in np.argsort(-p) if self.classes[i] != "benign"]
        return self.classes[order[0]], float(harmful)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, vocab=np.array(self.vocab), classes=np.array(self.classes),
                            W=self.W.astype(np.float16), b=self.b, threshold=np.float32(self.threshold),
                            train_sha256=np.array(self.train_sha256))

    @classmethod
    def load(cls, path: Path) -> "LinearModel":
        with np.load(path, allow_pickle=False) as z:
            return cls(list(z["vocab"]), list(z["classes"]), z["W"], z["b"], float(z["threshold"]),
                       str(z["train_sha256"]))


def fit(texts: list[str], labels: list[str], epochs: int = 400, lr: float = 0.5, l2: float = 1e-4,
        min_count: int = 1) -> LinearModel:
    """Full-batch gradient descent on the softmax loss (deterministic: no sampling)."""
    feats = [features(t) for t in texts]
    counts: dict[str, int] = {}
    for fs in feats:
        for f in fs:
            counts[f] = counts.get(f, 0) + 1
    vocab = sorted(f for f, n in counts.items() if n >= min_count)
    classes = ["benign"] + sorted({y for y in labels if y != "benign"})
    model = LinearModel(vocab, classes, np.zeros((len(vocab), len(classes))), np.zeros(len(classes)), 0.5)
    X = model._rows(feats)
    Y = np.zeros((len(texts), len(classes)), np.float32)
    Y[np.arange(len(texts)), [classes.index(y) for y in labels]] = 1.0
    W, b = model.W, model.b
    for _ in range(epochs):
        z = X @ W + b
        z -= z.max(1, keepdims=True)
        P = np.exp(z)
        P /= P.sum(1, keepdims=True)
        G = (P - Y) / len(texts)
        W -= lr * (X.T @ G + l2 * W) * len(classes)
        b -= lr * G.sum(0) * len(classes)
    model.W, model.b = W, b
    return model


def cross_validated_threshold(texts: list[str], labels: list[str], folds: int = 5) -> float:
    """The lowest harmful probability that refused no benign text in ``folds``-fold cross-validation."""
    benign_scores = []
    order = sorted(range(len(texts)), key=lambda i: hashlib.sha256(texts[i].encode()).hexdigest())
    for k in range(folds):
        test = set(order[k::folds])
        train = [i for i in range(len(texts)) if i not in test]
        m = fit([texts[i] for i in train], [labels[i] for i in train])
        idx = [i for i in test if labels[i] == "benign"]
        if idx:
            p = m.proba([texts[i] for i in idx])
            benign_scores += list(1.0 - p[:, 0])
    return float(min(0.99, max(benign_scores, default=0.5) + 0.01))


def train_from_file(path: Path) -> LinearModel:
    """Train on a labelled TSV (lang, label, text); labels 'benign/...' count as benign."""
    rows = read_labelled(path)
    texts = [t for _, _, t in rows]
    labels = ["benign" if y.startswith("benign") else top_category(y) for _, y, _ in rows]
    model = fit(texts, labels)
    model.threshold = cross_validated_threshold(texts, labels)
    model.train_sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return model


def read_labelled(path: Path) -> list[tuple[str, str, str]]:
    """(lang, label, text) rows of a labelled TSV with a header line."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"{path}:{n}: expected 3 tab-separated fields (lang, label, text), got {len(parts)}")
        rows.append((parts[0], parts[1], parts[2]))
    return rows


@functools.lru_cache(maxsize=1)
def own_model() -> LinearModel | None:
    return LinearModel.load(MODEL_PATH) if MODEL_PATH.is_file() else None


@functools.lru_cache(maxsize=1)
def _profanity():
    try:
        from profanity_check import predict_prob
    except Exception:  # not installed, or its pinned scikit-learn does not load here: the layer is off
        return None
    return predict_prob


def own_layer(text: str):
    model = own_model()
    if model is None:
        return None
    category, p = model.predict(text)
    if p < model.threshold:
        return None
    return ModerationResult(False, category, (category,), (f"p={p:.2f}",), "classifier", ("tenku classifier",))


def profanity_layer(text: str):
    from tenku.safety.normalize import variants

    predict = _profanity()
    if predict is None:
        return None
    readings = variants(text, lemmas=False)[:4]
    if not readings:  # no word to read
        return None
    p = float(max(predict(readings)))
    if p < PROFANITY_THRESHOLD:
        return None
    return ModerationResult(False, "harassment", ("harassment",), (f"p={p:.2f}",), "profanity-check",
                            ("offensive language (alt-profanity-check)",))


def layers() -> list:
    """The classifier layers that refuse prompts, in order: alt-profanity-check when installed.

    tenku's own classifier is measured (``benchmarks/moderation_eval.py``) but does not refuse: trained on
    228 prompts, it scores everyday short prompts far outside them as harmful ("a video of a cat": 0.91
    harassment, "from an image": 0.90 violence, above its 0.83 threshold), and on the held-out split it
    refuses nothing the rules let through."""
    out = []
    if _profanity() is not None:
        out.append(profanity_layer)
    return out


def available() -> dict[str, bool]:
    return {"tenku classifier": own_model() is not None, "alt-profanity-check": _profanity() is not None}

