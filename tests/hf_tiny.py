"""Build tiny *random* HF VLMs (real architectures) with their processors, saved to a directory,
so tests load them through exactly the ``from_pretrained`` path a hub id takes."""

from __future__ import annotations

from pathlib import Path

WORDS = (  # noqa: SIM905 - a sentence of words reads better than a 23-item list
    "lift pick place the a red green blue cube can door open close stack on block put in bin robot arm move to"
).split()


def _fast_tokenizer(extra_special: list[str], bos="<bos>", eos="<eos>", cls_name="PreTrainedTokenizerFast"):
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", bos, eos, "<unk>"] + extra_special
    vocab = {t: i for i, t in enumerate(specials + WORDS + [w.capitalize() for w in WORDS] + list("0123456789.,:!?\n"))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit()])
    fast = getattr(transformers, cls_name)(
        tokenizer_object=tok, pad_token="<pad>", bos_token=bos, eos_token=eos, unk_token="<unk>"
    )
    fast.add_special_tokens({"additional_special_tokens": extra_special})
    return fast


def save_tiny_paligemma(path: Path) -> Path:
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    tok = _fast_tokenizer(["<image>"], cls_name="GemmaTokenizerFast")
    image_proc = SiglipImageProcessor(size={"height": 32, "width": 32}, image_seq_length=16)
    processor = PaliGemmaProcessor(image_processor=image_proc, tokenizer=tok)
    vocab = len(processor.tokenizer)
    text = GemmaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        pad_token_id=0,
    )
    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=64,
    )
    config = PaliGemmaConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        projection_dim=64,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vocab_size=vocab,
        hidden_size=64,
        pad_token_id=0,
    )
    config.text_config.vocab_size = vocab
    PaliGemmaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


IDEFICS3_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% else %} {{ item['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
)


def save_tiny_idefics3(path: Path) -> Path:
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        LlamaConfig,
    )

    tok = _fast_tokenizer(["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"])
    image_proc = Idefics3ImageProcessor(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    processor = Idefics3Processor(
        image_processor=image_proc, tokenizer=tok, image_seq_len=4, chat_template=IDEFICS3_TEMPLATE
    )
    vocab = len(processor.tokenizer)
    text = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=0,
    )
    config = Idefics3Config(
        text_config=text.to_dict(),
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=2,
        pad_token_id=0,
    )
    Idefics3ForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ item['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
)


def save_tiny_qwen2_5_vl(path: Path) -> Path:
    """A 32² image becomes 4x4 patches of 8 px, merged 2x2: 4 image tokens per camera."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tok = _fast_tokenizer(["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>",
                           "<|video_pad|>"], cls_name="Qwen2TokenizerFast")
    pixels = dict(patch_size=8, merge_size=2, temporal_patch_size=2, min_pixels=16 * 16, max_pixels=64 * 64)
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=tok,
                                    video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=QWEN_TEMPLATE)
    vocab = len(processor.tokenizer)
    text = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                num_key_value_heads=2, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, pad_token_id=0)
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=32, fullatt_block_indexes=[1])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, vocab_size=vocab, hidden_size=64,
                              image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
                              video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
                              vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"), pad_token_id=0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path
