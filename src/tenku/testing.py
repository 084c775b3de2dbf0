"""Helpers for tests of everything that needs a model: a tiny, randomly initialised pipeline folder.

``make_tiny_pipeline(path)`` writes a pipeline that generates 9 frames at 32x32 in well under a second
on a CPU. Its output layers are random (not the usual zero init), so frames depend on the prompt and
the seed instead of being constant.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tenku.config import preset_configs

_TINY = preset_configs("tiny-pipeline")  # tenku.config.MODEL_PRESETS["tiny-pipeline"]
TINY_VAE, TINY_DIT, TINY_TEXT, TINY_FLOW, TINY_SAMPLE = (_TINY[k] for k in ("vae", "dit", "text", "flow", "sample"))


def _randomize_zero_params(module: torch.nn.Module, generator: torch.Generator, std: float = 0.05) -> None:
    """Give every all-zero weight matrix/kernel (zero-initialised output and adaLN layers) random values."""
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * std)


def make_tiny_models(seed: int = 0):
    """(vae, dit, text_encoder): tiny random modules (see the module docstring), in eval mode."""
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.models.vae import CausalVAE

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae, dit, text = CausalVAE(TINY_VAE), DiT(TINY_DIT), ByteTextEncoder(TINY_TEXT)
    for m in (vae, dit):
        _randomize_zero_params(m, g)
    return vae.eval(), dit.eval(), text.eval()


def make_tiny_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny randomly initialised pipeline folder at ``path`` and return ``path``."""
    from tenku.pipeline.pipeline import TenkuPipeline

    vae, dit, text = make_tiny_models(seed)
    pipe = TenkuPipeline(vae, dit, text, TINY_FLOW, TINY_SAMPLE)
    return pipe.save_pretrained(path)


# ---- tiny diffusers pipelines (random weights, built from diffusers' and transformers' own classes) ------------

TINY_WORDS = ("a red blue green yellow ball square circle triangle rolls falls moves bounces left right up down "
              "the on of in fox runs through snow dance monkey negative slowly quickly and").split()
TINY_DIFFUSERS_SAMPLE = dict(width=32, height=32, num_frames=9, fps=8, num_steps=2, guidance=5.0)
TINY_DIFFUSERS = ("wan", "wan-i2v", "ltx", "cogvideox", "cogvideox-i2v", "hunyuanvideo", "hunyuanvideo-i2v",
                  "hunyuanvideo15", "hunyuanvideo15-i2v")  # make_tiny_diffusers kinds
TINY_IMAGE_TOKENS = 16  # the tiny vision encoders' patches: a 32x32 image in 8x8 patches


def tiny_tokenizer(vocab_size: int = 64):
    """A word-level tokenizer built here (no download): pad 0, eos 1, unk 2, bos 3, then :data:`TINY_WORDS`;
    its chat template (for pipelines that format prompts as chat messages) joins the messages' contents."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<s>": 3}
    for w in TINY_WORDS:
        vocab.setdefault(w, len(vocab))
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} < {len(vocab)} words")
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", model_max_length=2048)
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast


def _t5(width: int = 32, umt5: bool = False, vocab_size: int = 64):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kw = dict(vocab_size=vocab_size, d_model=width, d_kv=8, d_ff=37, num_layers=2, num_heads=2,
              relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1)
    return (UMT5EncoderModel(UMT5Config(**kw)) if umt5 else T5EncoderModel(T5Config(**kw))).eval()


def make_tiny_diffusers_pipeline(kind: str, seed: int = 0):
    """A tiny randomly initialised diffusers pipeline of ``kind`` (:data:`TINY_DIFFUSERS`): 2 transformer layers,
    widths of 8-32, text encoders and tokenizers built here. It makes 9 frames at 32x32 in about a second."""
    import diffusers as d

    torch.manual_seed(seed)
    if kind in ("wan", "wan-i2v"):
        vae = d.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                 temperal_downsample=[False, True, True])
        i2v = kind == "wan-i2v"
        tr = d.WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                     in_channels=36 if i2v else 16, out_channels=16, text_dim=32, freq_dim=256,
                                     ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                     qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
                                     image_dim=4 if i2v else None)  # Wan 2.1 I2V: a CLIP image encoder
        parts = dict(transformer=tr, vae=vae, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=7.0),
                     text_encoder=_t5(umt5=True), tokenizer=tiny_tokenizer(), transformer_2=None)
        if not i2v:
            return d.WanPipeline(**parts)
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

        enc = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                                             num_attention_heads=2, image_size=32,
                                                             intermediate_size=16, patch_size=4))
        return d.WanImageToVideoPipeline(**parts, image_encoder=enc.eval(),
                                         image_processor=CLIPImageProcessor(crop_size=32, size=32))
    if kind == "ltx":
        tr = d.LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                          num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                          num_layers=2, caption_channels=32)
        vae = d.AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                      decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                      decoder_layers_per_block=(1, 1, 1, 1, 1),
                                      spatio_temporal_scaling=(True, True, False, False),
                                      decoder_spatio_temporal_scaling=(True, True, False, False),
                                      decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4,
                                      upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
                                      patch_size_t=1, encoder_causal=True, decoder_causal=False)
        vae.use_framewise_encoding = vae.use_framewise_decoding = False
        return d.LTXPipeline(transformer=tr, vae=vae, scheduler=d.FlowMatchEulerDiscreteScheduler(),
                             text_encoder=_t5(), tokenizer=tiny_tokenizer())
    if kind in ("cogvideox", "cogvideox-i2v"):
        i2v = kind == "cogvideox-i2v"
        tr = d.CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=16, in_channels=8 if i2v else 4,
                                           out_channels=4, time_embed_dim=2, text_embed_dim=32, num_layers=2,
                                           sample_width=4, sample_height=4, sample_frames=9, patch_size=2,
                                           temporal_compression_ratio=4, max_text_seq_length=16,
                                           use_rotary_positional_embeddings=True,
                                           use_learned_positional_embeddings=i2v)
        vae = d.AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                       up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                       latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                       temporal_compression_ratio=4)
        cls = d.CogVideoXImageToVideoPipeline if i2v else d.CogVideoXPipeline
        return cls(transformer=tr, vae=vae, scheduler=d.CogVideoXDDIMScheduler(), text_encoder=_t5().eval(),
                   tokenizer=tiny_tokenizer())
    if kind in ("hunyuanvideo", "hunyuanvideo-i2v"):
        return _tiny_hunyuanvideo(kind.endswith("-i2v"))
    if kind in ("hunyuanvideo15", "hunyuanvideo15-i2v"):
        return _tiny_hunyuanvideo15(kind.endswith("-i2v"))
    raise ValueError(f"unknown tiny diffusers kind {kind!r}; choose one of {TINY_DIFFUSERS}")


def _tiny_hunyuanvideo(i2v: bool):
    """HunyuanVideo (Llama + CLIP text encoders) or its image-to-video class (a Llava text encoder that reads
    the image; the image's latent concatenated to the noise, ``image_condition_type="latent_concat"``)."""
    import diffusers as d
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tr = d.HunyuanVideoTransformer3DModel(in_channels=9 if i2v else 4, out_channels=4, num_attention_heads=2,
                                          attention_head_dim=10, num_layers=2, num_single_layers=2,
                                          num_refiner_layers=1, patch_size=1, patch_size_t=1,
                                          guidance_embeds=not i2v, text_embed_dim=16, pooled_projection_dim=8,
                                          rope_axes_dim=(2, 4, 4),
                                          image_condition_type="latent_concat" if i2v else None)
    vae = d.AutoencoderKLHunyuanVideo(in_channels=3, out_channels=3, latent_channels=4,
                                      down_block_types=("HunyuanVideoDownBlock3D",) * 4,
                                      up_block_types=("HunyuanVideoUpBlock3D",) * 4,
                                      block_out_channels=(8, 8, 8, 8), layers_per_block=1, act_fn="silu",
                                      norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8,
                                      temporal_compression_ratio=4, mid_block_add_attention=True)
    llama = LlamaConfig(bos_token_id=3, eos_token_id=1, pad_token_id=0, hidden_size=16, intermediate_size=37,
                        num_attention_heads=4, num_hidden_layers=2, vocab_size=64, hidden_act="gelu")
    clip = CLIPTextModel(CLIPTextConfig(bos_token_id=3, eos_token_id=1, pad_token_id=0, hidden_size=8,
                                        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                        vocab_size=64, projection_dim=32, max_position_embeddings=77)).eval()
    parts = dict(transformer=tr, vae=vae, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=7.0),
                 tokenizer=tiny_tokenizer(), text_encoder_2=clip, tokenizer_2=tiny_tokenizer())
    if not i2v:
        return d.HunyuanVideoPipeline(text_encoder=LlamaModel(llama).eval(), **parts)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    side = int(TINY_IMAGE_TOKENS ** 0.5) * 8
    vision = CLIPVisionConfig(hidden_size=8, intermediate_size=37, projection_dim=32, num_attention_heads=4,
                              num_hidden_layers=2, image_size=side, patch_size=8)
    llava = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=llama, pad_token_id=0,
                                                      image_token_index=63)).eval()  # a token no prompt has
    return d.HunyuanVideoImageToVideoPipeline(text_encoder=llava, image_processor=CLIPImageProcessor(
        crop_size=side, size=side), **parts)


def _tiny_hunyuanvideo15(i2v: bool):
    """HunyuanVideo 1.5 (a Qwen2.5-VL text model, a ByT5 glyph encoder and a guider) or its image-to-video
    class (a SigLIP image encoder)."""
    import diffusers as d
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    tr = d.HunyuanVideo15Transformer3DModel(in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8,
                                            num_layers=2, num_refiner_layers=1, mlp_ratio=2.0, patch_size=1,
                                            patch_size_t=1, text_embed_dim=16, text_embed_2_dim=32,
                                            image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=32,
                                            task_type="i2v" if i2v else "t2v")
    vae = d.AutoencoderKLHunyuanVideo15(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                                        layers_per_block=1, spatial_compression_ratio=4,
                                        temporal_compression_ratio=2, downsample_match_channel=False,
                                        upsample_match_channel=False)
    qwen = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=64, pad_token_id=0, bos_token_id=3, eos_token_id=1, rope_theta=1000000.0,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"})).eval()
    byt5 = ByT5Tokenizer()  # bytes: nothing to download
    glyph = _t5(width=32, vocab_size=len(byt5))
    parts = dict(transformer=tr, vae=vae, scheduler=d.FlowMatchEulerDiscreteScheduler(shift=7.0), text_encoder=qwen,
                 tokenizer=tiny_tokenizer(), text_encoder_2=glyph, tokenizer_2=byt5,
                 guider=ClassifierFreeGuidance(guidance_scale=5.0))
    if not i2v:
        return d.HunyuanVideo15Pipeline(**parts)
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    side = int(TINY_IMAGE_TOKENS ** 0.5) * 8
    enc = SiglipVisionModel(SiglipVisionConfig(hidden_size=12, intermediate_size=16, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=side, patch_size=8)).eval()
    return d.HunyuanVideo15ImageToVideoPipeline(**parts, image_encoder=enc, feature_extractor=SiglipImageProcessor(
        size={"height": side, "width": side}))


TINY_CALL = {"wan": {"max_sequence_length": 16}, "ltx": {"max_sequence_length": 16},
             "cogvideox": {"max_sequence_length": 16},
             "hunyuanvideo": {"max_sequence_length": 16, "prompt_template": {"template": "{}", "crop_start": 0}},
             # the Llava prompt (diffusers' layout): the image's TINY_IMAGE_TOKENS tokens written over positions
             # 5..5+TINY_IMAGE_TOKENS of the padded text
             "hunyuanvideo-i2v": {"max_sequence_length": 16 + TINY_IMAGE_TOKENS + 5, "prompt_template": {
                 "template": "{}", "crop_start": 0, "image_emb_len": TINY_IMAGE_TOKENS, "image_emb_start": 5,
                 "image_emb_end": 5 + TINY_IMAGE_TOKENS}},
             "hunyuanvideo15": {}}


def make_tiny_diffusers(path: str | Path, kind: str = "wan", seed: int = 0) -> Path:
    """Write a tiny diffusers folder of ``kind`` at ``path`` (``save_pretrained``), with a ``sample.json`` of
    tiny defaults (:data:`TINY_DIFFUSERS_SAMPLE`) and a ``tenku.json`` of its short text length; returns ``path``."""
    import json

    path = Path(path)
    make_tiny_diffusers_pipeline(kind, seed).save_pretrained(str(path))
    (path / "sample.json").write_text(json.dumps(TINY_DIFFUSERS_SAMPLE) + "\n")
    call = TINY_CALL.get(kind, TINY_CALL[kind.split("-")[0]])
    (path / "tenku.json").write_text(json.dumps({"options": {"call": call}}) + "\n")
    return path
