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
