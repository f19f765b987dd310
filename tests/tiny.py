"""Tiny random SD and SDXL pipelines, built offline from configs, for tests and benchmarks.

The component sizes follow diffusers' own `get_dummy_components`; the CLIP tokenizer is the
demo model's offline one, so nothing is downloaded. Test scaffolding, kept out of the product
package; the benches (bench/) build their tiny models with it too.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from engine.demo_model.tokenizer import build_tokenizer
from engine.training.targets import UNET_TARGETS


def _text_config(tok: CLIPTokenizer, **kw: object) -> CLIPTextConfig:
    specials = dict(
        bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        vocab_size=len(tok),
    )
    return CLIPTextConfig(layer_norm_eps=1e-5, **specials, **kw)


def _vae(channels: list[int], groups: int, **kw: object) -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=channels,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * len(channels),
        up_block_types=["UpDecoderBlock2D"] * len(channels),
        latent_channels=4,
        norm_num_groups=groups,
        **kw,
    )


def tiny_sd(seed: int = 0, in_channels: int = 4) -> StableDiffusionPipeline:
    """`in_channels=9`: the UNet of an inpainting checkpoint (latents, mask, masked image)."""
    torch.manual_seed(seed)
    tok = build_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    text = CLIPTextModel(
        _text_config(
            tok, hidden_size=32, intermediate_size=64, num_attention_heads=8, num_hidden_layers=3
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=_vae([4, 8], 2),
        text_encoder=text,
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sdxl(seed: int = 0, channels: tuple[int, int] = (2, 4)) -> StableDiffusionXLPipeline:
    torch.manual_seed(seed)
    tok = build_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=channels,
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,
        cross_attention_dim=64,
        norm_num_groups=1,
    )
    cfg = _text_config(
        tok,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=5,
        hidden_act="gelu",
        projection_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        steps_offset=1,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
    )
    return StableDiffusionXLPipeline(
        vae=_vae([32, 64], 32),
        text_encoder=CLIPTextModel(cfg),
        tokenizer=tok,
        text_encoder_2=CLIPTextModelWithProjection(cfg),
        tokenizer_2=copy.deepcopy(tok),
        unet=unet,
        scheduler=scheduler,
    )


def save_tiny(family: str, folder: Path, seed: int = 0) -> Path:
    pipe = (tiny_sdxl if family == "sdxl" else tiny_sd)(seed)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def random_lora(
    pipe: StableDiffusionPipeline, path: Path, seed: int, rank: int = 4, scale: float = 1.0
) -> Path:
    """Write a diffusers-format UNet LoRA with random A and B (so it visibly changes images)."""
    torch.manual_seed(seed)
    unet = copy.deepcopy(pipe.unet)
    unet.add_adapter(
        LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=list(UNET_TARGETS)
        )
    )
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    state = {k: v * scale for k, v in state.items()}
    type(pipe).save_lora_weights(path.parent, unet_lora_layers=state, weight_name=path.name)
    return path


def tiny_captioner(folder: Path) -> Path:
    """A BLIP captioning model with random weights and a 14-word vocabulary, saved as a
    transformers folder: what LORAMINT_CAPTION_MODEL loads, minus the download."""
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "red", "square", "on"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), bos_token="[DEC]")
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1}
    config = BlipConfig(
        text_config={
            **small,
            "vocab_size": len(words),
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "bos_token_id": 5,
            "pad_token_id": 0,
            "sep_token_id": 3,
            "eos_token_id": 3,
        },
        vision_config={**small, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_florence(folder: Path) -> Path:
    """A Florence-2 model (transformers' own format) with random weights and a byte-level BPE
    vocabulary learnt from a few captions, saved as a folder: what LORAMINT_CAPTION_MODEL
    loads, minus the download."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        BartTokenizerFast,
        CLIPImageProcessorPil,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = ["the image shows a red star on a white background", "what does the image describe"]
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=1, special_tokens=specials)
    bpe.save_model(str(folder))
    tok = BartTokenizerFast(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        extra_special_tokens={"image_token": "<image>"},
    )
    layers = {"encoder_layers": 1, "decoder_layers": 1, "encoder_ffn_dim": 37}
    text = {
        "model_type": "bart",
        **layers,
        "d_model": 32,
        "decoder_ffn_dim": 37,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "vocab_size": len(tok),
        "max_position_embeddings": 128,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "decoder_start_token_id": tok.eos_token_id,
    }
    vision = {
        "depths": [1, 1],
        "patch_size": [7, 3],
        "patch_stride": [4, 2],
        "patch_padding": [3, 1],
        "patch_prenorm": [False, True],
        "embed_dim": [16, 32],
        "num_heads": [2, 2],
        "num_groups": [2, 2],
        "window_size": 2,
        "projection_dim": 32,
        "max_position_embeddings": 16,
        "max_temporal_embeddings": 4,
    }
    config = Florence2Config(
        text_config=text, vision_config=vision, image_token_id=tok.image_token_id
    )
    torch.manual_seed(0)
    Florence2ForConditionalGeneration(config).save_pretrained(folder)
    # 32 px pictures: 4x4 patches after two stages, and one more token (as the real model's 577).
    size = {"height": 32, "width": 32}
    images = CLIPImageProcessorPil(size=size, do_center_crop=False, image_seq_length=17)
    Florence2Processor(image_processor=images, tokenizer=tok).save_pretrained(folder)
    return folder


def tiny_clip(folder: Path) -> Path:
    """A CLIP model with random weights and the demo model's tokenizer, saved as a transformers
    folder: what LORAMINT_JUDGE_MODEL loads, minus the download."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = build_tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1}
    text = _text_config(tok, **small, num_attention_heads=2, max_position_embeddings=77)
    config = CLIPConfig(
        text_config=text.to_dict(),
        vision_config={**small, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tok).save_pretrained(folder)
    return folder


def tiny_segmenter(folder: Path) -> Path:
    """A SegFormer semantic segmentation model with random weights and two labels ("wall", a
    background; "cat", a subject), saved as a transformers folder: what LORAMINT_MASK_MODEL
    loads, minus the download."""
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessor,
    )

    config = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 1],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        num_labels=2,
        id2label={0: "wall", 1: "cat"},
        label2id={"wall": 0, "cat": 1},
    )
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(config).save_pretrained(folder, safe_serialization=True)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
