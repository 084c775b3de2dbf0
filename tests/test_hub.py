"""Save/load of component and pipeline folders: exact round trips and clear errors for broken folders."""

import json

import pytest
import torch

from tenku.errors import ModelFolderError
from tenku.models.hub import (
    INDEX_NAME,
    REGISTRY,
    load_component,
    load_pipeline_folder,
    save_pretrained,
)
from tenku.models.text import ByteTextEncoder
from tenku.testing import TINY_DIT, TINY_TEXT, TINY_VAE, make_tiny_models, make_tiny_pipeline


@pytest.fixture(scope="module")
def models():
    return make_tiny_models(seed=3)


def _dit_out(dit, text):
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(4, 2, 4, 4, generator=g)]
    emb, mask = text.encode(["a red ball"])
    return dit(x, torch.tensor([0.5]), emb, mask)[0]


def test_component_round_trip_is_exact(models, tmp_path):
    vae, dit, text = models
    for name, module in (("vae", vae), ("dit", dit), ("text", text)):
        save_pretrained(module, module.cfg, tmp_path / name)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        assert cfg["_class_name"] == type(module).__name__ and cfg["_class_name"] in REGISTRY
    vae2, dit2, text2 = (load_component(tmp_path / n) for n in ("vae", "dit", "text"))
    assert vae2.cfg == vae.cfg and dit2.cfg == dit.cfg and text2.cfg == text.cfg
    for a, b in ((vae, vae2), (dit, dit2), (text, text2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    with torch.no_grad():
        assert torch.equal(_dit_out(dit, text), _dit_out(dit2, text2))
        video = torch.rand(1, 3, 5, 16, 16) * 2 - 1
        assert torch.equal(vae.decode(vae.encode(video)), vae2.decode(vae2.encode(video)))


def test_fp16_weights_load_as_float32(models, tmp_path):
    _, _, text = models
    save_pretrained(text, None, tmp_path / "t16", dtype=torch.float16)
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "t16" / "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in stored.values())
    loaded = load_component(tmp_path / "t16")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    ref = text.tok_emb.weight.half().float()
    assert torch.equal(loaded.tok_emb.weight, ref)


def test_broken_component_folders(models, tmp_path):
    _, _, text = models
    d = tmp_path / "text"
    save_pretrained(text, None, d)
    weights = (d / "model.safetensors").read_bytes()

    with pytest.raises(ModelFolderError, match="model folder not found"):
        load_component(tmp_path / "nowhere")
    # truncated weights
    (d / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ModelFolderError, match=r"model\.safetensors.*truncated or corrupted"):
        load_component(d)
    # missing weights
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match=r"missing .*model\.safetensors"):
        load_component(d)
    (d / "model.safetensors").write_bytes(weights)
    assert isinstance(load_component(d), ByteTextEncoder)  # restored folder loads again
    # config that does not match the weights (wrong shapes)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "dim": 48, "num_heads": 2}))
    with pytest.raises(ModelFolderError, match=r"shape mismatch.*config needs"):
        load_component(d)
    (d / "config.json").write_text(json.dumps({**cfg, "depth": 2}))
    with pytest.raises(ModelFolderError, match="missing tensor"):
        load_component(d)
    # wrong class for the slot, unknown class, unknown field, missing or garbled config
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="this slot needs DiT"):
        load_component(d, expect=("DiT",))
    (d / "config.json").write_text(json.dumps({**cfg, "_class_name": "Banana"}))
    with pytest.raises(ModelFolderError, match="'Banana'"):
        load_component(d)
    (d / "config.json").write_text(json.dumps({**cfg, "colour": 1}))
    with pytest.raises(ModelFolderError, match="colour"):
        load_component(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="not valid JSON"):
        load_component(d)
    (d / "config.json").unlink()
    with pytest.raises(ModelFolderError, match=r"missing .*config\.json"):
        load_component(d)


def test_pipeline_folder_layout_and_errors(tmp_path):
    path = make_tiny_pipeline(tmp_path / "pipe")
    index = json.loads((path / INDEX_NAME).read_text())
    assert index["_class_name"] == "TenkuPipeline" and "tenku_version" in index
    assert index["components"] == {"vae": "vae", "transformer": "transformer", "text_encoder": "text_encoder"}
    for sub in ("vae", "transformer", "text_encoder"):
        assert (path / sub / "config.json").is_file() and (path / sub / "model.safetensors").is_file()
    assert (path / "sample.json").is_file() and (path / "flow.json").is_file()
    comps, flow, sample, _ = load_pipeline_folder(path)
    assert comps["transformer"].cfg == TINY_DIT and comps["vae"].cfg == TINY_VAE
    assert comps["text_encoder"].cfg == TINY_TEXT and sample.num_frames == 9
    # saving again over an existing pipeline folder replaces it; no temporary folders are left behind
    make_tiny_pipeline(path, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
    # swapped components: the transformer slot holds a VAE
    (path / INDEX_NAME).write_text(json.dumps({**index, "components": {**index["components"], "transformer": "vae"}}))
    with pytest.raises(ModelFolderError, match="holds a CausalVAE, but this slot needs DiT"):
        load_pipeline_folder(path)
    (path / INDEX_NAME).unlink()
    with pytest.raises(ModelFolderError, match=r"missing .*model_index\.json"):
        load_pipeline_folder(path)
    with pytest.raises(ModelFolderError, match="not found"):
        load_pipeline_folder(tmp_path / "absent")


def test_hf_text_encoder_saved_in_a_component_folder(tmp_path):
    pytest.importorskip("transformers")
    from test_text import _tiny_t5

    from tenku.models.text import HFTextEncoder

    enc = HFTextEncoder(_tiny_t5(tmp_path / "t5"), max_length=32)
    save_pretrained(enc, None, tmp_path / "te")
    assert (tmp_path / "te" / "model" / "config.json").is_file()
    loaded = load_component(tmp_path / "te", expect=("ByteTextEncoder", "HFTextEncoder"))
    a, _ = enc.encode(["Grüße"])
    b, _ = loaded.encode(["Grüße"])
    assert isinstance(loaded, HFTextEncoder) and loaded.max_length == 32 and torch.equal(a, b)
    # a whole pipeline with the HF encoder: saved self-contained, loads and generates the same frames
    from tenku.pipeline import TenkuPipeline

    vae, dit, _ = make_tiny_models(seed=0)
    pipe = TenkuPipeline(vae, dit, enc)
    pipe.save_pretrained(tmp_path / "pipe")
    again = TenkuPipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(again.text_encoder, HFTextEncoder)
    kw = dict(num_frames=5, height=16, width=16, num_steps=2, seed=0, progress=False)
    assert (pipe("Grüße", **kw).frames == again("Grüße", **kw).frames).all()
