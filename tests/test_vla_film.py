"""Instruction FiLM on the image features (``BackboneConfig.image_film``): the modulation is the FiLM formula, the
instruction changes the image tokens, and — the point of it — an encoder with FiLM learns to locate *the object the
instruction names* among two, which the same encoder without it cannot (its image tokens ignore the prompt)."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vla.backbones.embedded import EmbeddedBackbone, InstructionFiLM
from vla.config import tiny_config


def _backbone(film: bool, seed: int = 0) -> EmbeddedBackbone:
    torch.manual_seed(seed)
    cfg = tiny_config()
    b = dataclasses.replace(cfg.backbone, image_film=film, image_keypoints=8, image_channels=(16, 32),
                            fuse_images_in_lm=False, freeze_lm=True)
    return EmbeddedBackbone(cfg.replace(backbone=b, image_size=(32, 32)))


def test_film_is_the_formula():
    torch.manual_seed(0)
    film = InstructionFiLM(channels=5, cond_dim=7)
    torch.nn.init.normal_(film.to_scale_shift.weight)
    torch.nn.init.normal_(film.to_scale_shift.bias)
    x, cond = torch.randn(3, 5, 4, 6), torch.randn(3, 7)
    w, b = film.to_scale_shift.weight, film.to_scale_shift.bias
    gamma, beta = cond @ w[:5].T + b[:5], cond @ w[5:].T + b[5:]
    mixed = torch.einsum("oc,bchw->bohw", film.mix.weight[:, :, 0, 0], x) + film.mix.bias[None, :, None, None]
    expected = x + F.gelu(mixed * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])
    assert torch.allclose(film(x, cond), expected, atol=1e-5)


def test_the_instruction_reaches_the_image_tokens_only_with_film():
    images = torch.randint(0, 256, (1, 2, 3, 32, 32), dtype=torch.uint8).expand(2, -1, -1, -1, -1)
    prompts = ["lift the red cube", "lift the green cube"]
    for film in (False, True):
        bb = _backbone(film)
        if film:
            torch.nn.init.normal_(bb.image_encoder.film.to_scale_shift.weight, std=0.1)  # trained, not at init
        tokens = bb.encode_images(images, bb.instruction_embedding(prompts, images.device) if film else None)
        assert torch.allclose(tokens[0], tokens[1]) != film
    with pytest.raises(ValueError, match="FiLM-conditioned"):
        _backbone(True).encode_images(images)


def _two_squares(n: int, gen: torch.Generator):
    """Images with a red and a green 6-px square at random places, a prompt naming one, its centre in [-1, 1]."""
    images = torch.zeros(n, 1, 3, 32, 32, dtype=torch.uint8)
    prompts, targets = [], torch.zeros(n, 2)
    for i in range(n):
        corners = torch.randint(0, 26, (2, 2), generator=gen)
        while (corners[0] - corners[1]).abs().max() < 7:  # no overlap
            corners = torch.randint(0, 26, (2, 2), generator=gen)
        for channel, (y, x) in enumerate(corners.tolist()):  # red in channel 0, green in channel 1
            images[i, 0, channel, y:y + 6, x:x + 6] = 255
        named = int(torch.randint(0, 2, (), generator=gen))
        prompts.append(f"pick up the {('red', 'green')[named]} block")
        targets[i] = (corners[named].flip(0).float() + 2.5) / 31 * 2 - 1  # (x, y)
    return images, prompts, targets


def _locate_error(film: bool, steps: int = 100) -> float:
    bb = _backbone(film, seed=1)
    readout = torch.nn.Linear(bb.hidden_size, 2)
    params = [p for p in bb.parameters() if p.requires_grad] + list(readout.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        images, prompts, targets = _two_squares(32, gen)
        cond = bb.instruction_embedding(prompts, images.device) if film else None
        pred = readout(bb.encode_images(images, cond).mean(1))
        loss = F.mse_loss(pred, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    bb.eval()
    images, prompts, targets = _two_squares(256, torch.Generator().manual_seed(123))
    with torch.no_grad():
        cond = bb.instruction_embedding(prompts, images.device) if film else None
        pred = readout(bb.encode_images(images, cond).mean(1))
    return float((pred - targets).norm(dim=-1).mean())


def test_film_learns_to_find_the_named_object():
    # without FiLM the tokens are the same for both prompts: at best it points between the two squares
    plain, film = _locate_error(False), _locate_error(True)
    assert film < 0.5 * plain and film < 0.25, (film, plain)


def test_a_film_checkpoint_reloads_with_its_conditioning(tmp_path):
    import numpy as np

    from tests.finetune_helpers import toy_spec
    from tests.vla_helpers import wake_zero_layers_of
    from vla.policy import VLAPolicy

    cfg = tiny_config()
    policy = VLAPolicy.create(cfg.replace(backbone=dataclasses.replace(cfg.backbone, image_film=True)),
                              [toy_spec("toy_arm")], seed=0)
    wake_zero_layers_of(policy.model)  # incl. FiLM's zero-initialised projection: the prompt must matter
    loaded = VLAPolicy.from_pretrained(policy.save_pretrained(tmp_path / "ckpt"))
    assert loaded.config.backbone.image_film
    spec = policy.spec("toy_arm")
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for c in spec.cameras}
    obs = [{"images": images, "state": np.zeros(spec.state_dim, np.float32), "prompt": p}
           for p in ("lift the red cube", "lift the blue cube")]
    before, after = policy.predict(obs, seed=0), loaded.predict(obs, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert not np.allclose(before[0], before[1])  # same images and noise, another instruction: another chunk
