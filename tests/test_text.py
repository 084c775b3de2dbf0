"""Text encoders: the built-in byte encoder and the Hugging Face adapter (tiny random T5 saved locally)."""

import json

import pytest
import torch

from tenku.config import TextEncoderConfig
from tenku.errors import ModelFolderError
from tenku.models.text import BOS, EOS, PAD, ByteTextEncoder, HFTextEncoder, byte_tokenize, utf8_truncate

TINY = TextEncoderConfig(dim=32, depth=2, num_heads=2, max_length=64)


def test_any_unicode_prompt_encodes():
    enc = ByteTextEncoder(TINY).eval()
    prompts = ["Grüße aus München, Straße", "🙂🚀 emoji", "一个红色的球向右滚动", "", "a red ball"]
    emb, mask = enc.encode(prompts)
    longest = max(len(p.encode()) for p in prompts) + 2
    assert emb.shape == (5, longest, 32) and mask.shape == (5, longest) and mask.dtype == torch.bool
    assert torch.isfinite(emb).all()
    assert mask.sum(1).tolist() == [len(p.encode()) + 2 for p in prompts]
    assert mask[3].sum() == 2  # the empty prompt is BOS + EOS: valid unconditional input
    assert (emb[~mask] == 0).all()  # padding positions are zero
    # different prompts give different embeddings
    assert not torch.allclose(emb[0, :2], emb[4, :2])


def test_padding_does_not_change_a_prompt():
    enc = ByteTextEncoder(TINY).eval()
    alone, m1 = enc.encode(["a red ball"])
    batched, m2 = enc.encode(["a red ball", "a much longer prompt about a blue square bouncing off the wall"])
    n = int(m1.sum())
    assert torch.allclose(alone[0, :n], batched[0, :n], atol=1e-5)
    assert not m2[0, n:].any()


def test_truncation_at_max_length_bytes_keeps_characters_whole():
    assert utf8_truncate("aü", 2) == b"a"  # ü is 2 bytes: not split
    ids, mask = byte_tokenize(["x" * 100, "€" * 30], max_length=64)
    assert ids.shape == (2, 66)
    assert ids[0, 0] == BOS and ids[0, 65] == EOS
    assert mask[1].sum() == 63 + 2 and ids[1, 65] == PAD  # 21 whole euro signs = 63 bytes
    enc = ByteTextEncoder(TINY)
    emb, _ = enc.encode(["y" * 1000])
    assert emb.shape == (1, 66, 32)
    with pytest.raises(TypeError):
        enc.encode("a single string")


def _tiny_t5(path):
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    torch.manual_seed(0)
    tok = ByT5Tokenizer()  # byte-level: needs no vocabulary file, nothing is downloaded
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
    T5EncoderModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    pytest.importorskip("transformers")
    return _tiny_t5(tmp_path_factory.mktemp("t5"))


def test_hf_text_encoder_with_tiny_t5(tiny_t5):
    enc = HFTextEncoder(tiny_t5, max_length=16)
    assert enc.dim == 32
    assert not any(p.requires_grad for p in enc.parameters())
    emb, mask = enc.encode(["Grüße 🙂", "", "x" * 40])
    assert emb.shape[0] == 3 and emb.shape[2] == 32 and emb.shape[1] == 16  # truncated at max_length
    assert mask[1].sum() == 1  # "" is only </s>
    alone, m = enc.encode(["Grüße 🙂"])
    n = int(m.sum())
    assert torch.allclose(alone[0, :n], emb[0, :n], atol=1e-5)
    enc.train()
    assert not enc.model.training  # stays frozen


def test_hf_text_encoder_rejects_bad_folders(tmp_path, tiny_t5):
    with pytest.raises(ModelFolderError, match="no config.json"):
        HFTextEncoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ModelFolderError, match="expected a text encoder"):
        HFTextEncoder(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_t5 / "config.json").read_text())
    with pytest.raises(ModelFolderError, match="cannot load"):
        HFTextEncoder(broken)
