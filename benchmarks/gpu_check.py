"""GPU check in one shot: on a CUDA machine (<= 8 min) print one table of inference and training figures.

  * PaliGemma-3B-sized random-weight VLM (SigLIP-So400m + Gemma-2B) + pi0-sized expert (1024 x 18) at bf16,
    horizon 50, 10 flow steps: predict p50/p90 eager, expert compiled (``vla serve --compile``), and expert
    compiled with CUDA graphs (``mode="reduce-overhead"``).  Anchors: openpi pi0 ~73-86 ms on an RTX 4090,
    27 ms with hand-written Triton kernels; GR00T N1.7 47 ms with TensorRT on an H100; goal <= 30 ms.
  * batching speed-up at 8 and 32 observations per predict (B x time(1) / time(B)).
  * training samples/s (bf16 autocast, AdamW, batch 8): the demo model and a SmolVLM-sized config
    (Idefics3: SigLIP-B/16 at 512 + 960-wide Llama, 32 layers).

    python benchmarks/gpu_check.py              # CUDA
    python benchmarks/gpu_check.py --dry-run    # CPU: tiny random configs through the same code (~1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# full sizes vs --dry-run sizes: the same builders run with either
SIZES = {
    "full": {
        "paligemma": {"text": dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                                   num_attention_heads=8, num_key_value_heads=1, head_dim=256),
                      "vision": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                     num_attention_heads=16, image_size=224, patch_size=14),
                      "vocab": 257152},
        "smolvlm": {"text": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                                 num_key_value_heads=5),
                    "vision": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                   num_attention_heads=12, image_size=512, patch_size=16),
                    "scale_factor": 4},
        "expert": dict(width=1024, depth=18, heads=8), "horizon": 50, "repeats": 20, "batches": (8, 32),
        "train_steps": 6,
    },
    "dry": {
        "paligemma": {"text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=1, head_dim=16),
                      "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     image_size=32, patch_size=8),
                      "vocab": None},
        "smolvlm": {"text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2),
                    "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                   image_size=32, patch_size=8),
                    "scale_factor": 2},
        "expert": dict(width=64, depth=2, heads=4), "horizon": 8, "repeats": 1, "batches": (2, 4),
        "train_steps": 1,
    },
}


def save_paligemma(path: Path, size: dict, device: str, dtype) -> Path:
    import torch
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    from tests.hf_tiny import _fast_tokenizer

    tok = _fast_tokenizer(["<image>"], cls_name="GemmaTokenizerFast")
    v = size["vision"]
    seq = (v["image_size"] // v["patch_size"]) ** 2
    proc = PaliGemmaProcessor(image_processor=SiglipImageProcessor(
        size={"height": v["image_size"], "width": v["image_size"]}, image_seq_length=seq), tokenizer=tok)
    vocab = size["vocab"] or len(proc.tokenizer)
    hidden = size["text"]["hidden_size"]
    text = GemmaConfig(vocab_size=vocab, pad_token_id=0, **size["text"])
    cfg = PaliGemmaConfig(text_config=text.to_dict(), vision_config=SiglipVisionConfig(projection_dim=hidden, **v)
                          .to_dict(), projection_dim=hidden, image_token_index=tok.convert_tokens_to_ids("<image>"),
                          vocab_size=vocab, hidden_size=hidden, pad_token_id=0)
    cfg.text_config.vocab_size = vocab
    with torch.device(device):
        PaliGemmaForConditionalGeneration(cfg).to(dtype).save_pretrained(path)
    proc.save_pretrained(path)
    return path


def save_smolvlm(path: Path, size: dict, device: str, dtype) -> Path:
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        LlamaConfig,
    )

    from tests.hf_tiny import IDEFICS3_TEMPLATE, _fast_tokenizer

    tok = _fast_tokenizer(["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"])
    v = size["vision"]
    edge = {"longest_edge": v["image_size"]}
    seq = (v["image_size"] // v["patch_size"] // size["scale_factor"]) ** 2
    proc = Idefics3Processor(image_processor=Idefics3ImageProcessor(size=edge, max_image_size=edge,
                                                                    do_image_splitting=False),
                             tokenizer=tok, image_seq_len=seq, chat_template=IDEFICS3_TEMPLATE)
    text = LlamaConfig(vocab_size=len(proc.tokenizer), pad_token_id=0, **size["text"])
    cfg = Idefics3Config(text_config=text.to_dict(), vision_config=v, scale_factor=size["scale_factor"],
                         image_token_id=tok.convert_tokens_to_ids("<image>"), pad_token_id=0)
    with torch.device(device):
        Idefics3ForConditionalGeneration(cfg).to(dtype).save_pretrained(path)
    proc.save_pretrained(path)
    return path


def hf_policy(vlm: Path, sizes: dict, image: int, device: str):
    from vla.config import BackboneConfig, ExpertConfig, default_config
    from vla.policy import VLAPolicy

    cfg = dataclasses.replace(default_config(), backbone=BackboneConfig(kind="hf", hf_model=str(vlm),
                                                                        hf_dtype="bfloat16" if device == "cuda"
                                                                        else "float32"),
                              expert=ExpertConfig(**sizes["expert"]), image_size=(image, image),
                              action_horizon=sizes["horizon"])
    policy = VLAPolicy.create(cfg, [spec()])
    policy.model.to(device)
    return policy


def spec():
    from vla.types import EmbodimentSpec

    return EmbodimentSpec(name="panda", cameras=("agentview", "wrist"), state_dim=9, action_dim=7, gripper_dims=(6,))


def observation(size: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"images": {c: rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for c in spec().cameras},
            "state": rng.normal(size=9).astype(np.float32), "prompt": "pick up the red cube and lift it"}


def timed(fn, repeats: int, device: str) -> tuple[float, float]:
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(1000 * (time.perf_counter() - t))
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 90))


def autocast(device: str):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else contextlib.nullcontext()


def inference_rows(vlm: Path, sizes: dict, device: str) -> list[tuple]:
    import torch

    from serve.speedups import SpeedupConfig, apply_speedups

    rows = []
    image = sizes["paligemma"]["vision"]["image_size"]
    obs = observation(image)
    for variant in ("eager", "expert compiled (serve --compile)", "expert compiled + CUDA graphs"):
        if variant.endswith("CUDA graphs") and device != "cuda":
            rows.append(("predict 1 obs", variant, "skipped (no CUDA)", ""))
            continue
        policy = hf_policy(vlm, sizes, image, device)
        with autocast(device):
            if variant.startswith("expert compiled (serve"):
                apply_speedups(policy, SpeedupConfig(compile=True), warmup_observation=obs)
            elif variant.endswith("CUDA graphs"):
                expert = policy.model.expert
                expert.forward = torch.compile(expert.forward, mode="reduce-overhead", dynamic=False)
                for _ in range(3):  # CUDA graphs are recorded after a few warm-up calls
                    policy.predict([obs], seed=0)
            p50, p90 = timed(lambda p=policy: p.predict([obs], seed=0), sizes["repeats"], device)
        rows.append(("predict 1 obs", variant, f"p50 {p50:.1f} ms, p90 {p90:.1f} ms", "goal <= 30 ms (H100/H200)"))
        if variant == "eager":
            with autocast(device):
                for b in sizes["batches"]:
                    tb, _ = timed(lambda p=policy, n=b: p.predict([obs] * n, seed=list(range(n))), 3, device)
                    rows.append((f"batch {b}", variant, f"{tb:.1f} ms/predict, speed-up {b * p50 / tb:.1f}x",
                                 f"ideal {b}x"))
        del policy
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def train_samples_per_s(policy, sizes: dict, device: str, batch: int = 8) -> float:
    import torch

    h, w = policy.config.image_size
    rng = np.random.default_rng(0)
    sp = spec()
    samples = [{"images": {c: rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for c in sp.cameras},
                "state": rng.normal(size=9).astype(np.float32), "prompt": "lift the cube",
                "actions": rng.normal(size=(policy.config.action_horizon, 7)).astype(np.float32),
                "embodiment": sp.name} for _ in range(batch)]
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    policy.model.train()

    def step():
        with autocast(device):
            loss = policy.model.compute_loss(policy.collate(samples))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    p50, _ = timed(step, sizes["train_steps"], device)
    return batch / (p50 / 1000)


def training_rows(smol: Path, sizes: dict, device: str) -> list[tuple]:
    from finetune.recipes import demo_config
    from vla.policy import VLAPolicy

    demo = VLAPolicy.create(demo_config(), [spec()])
    demo.model.to(device)
    rows = [("train batch 8", "demo model (vla demo recipe)", f"{train_samples_per_s(demo, sizes, device):.1f} "
             "samples/s", "")]
    image = sizes["smolvlm"]["vision"]["image_size"]
    smolp = hf_policy(smol, {**sizes, "expert": {"width": 512, "depth": 8, "heads": 8} if device == "cuda"
                             else sizes["expert"]}, image, device)
    rows.append(("train batch 8", "SmolVLM-sized (Idefics3 960x32)", f"{train_samples_per_s(smolp, sizes, device):.1f}"
                 " samples/s", ""))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny configs on CPU: checks the wiring, not the speed")
    args = ap.parse_args(argv)
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # the processors' per-call advice would bury the table
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if device == "cpu" and not args.dry_run:
        print("gpu_check: no CUDA device here; run with --dry-run to check the wiring on CPU", file=sys.stderr)
        return 2
    sizes = SIZES["dry" if args.dry_run else "full"]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run: tiny configs, figures meaningless)"
    t0 = time.time()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        pali = save_paligemma(Path(tmp) / "pali", sizes["paligemma"], device, dtype)
        rows = inference_rows(pali, sizes, device)
        smol = save_smolvlm(Path(tmp) / "smol", sizes["smolvlm"], device, dtype)
        rows += training_rows(smol, sizes, device)
    print(f"\n== gpu_check on {name}, torch {torch.__version__}, {time.time() - t0:.0f} s ==")
    print(f"{'measurement':<16}{'config':<36}{'result':<40}anchor / goal")
    for r in rows:
        print(f"{r[0]:<16}{r[1]:<36}{r[2]:<40}{r[3]}")
    print("anchors: openpi pi0 ~73-86 ms (RTX 4090), 27 ms with Triton kernels; GR00T N1.7 47 ms TensorRT (H100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
