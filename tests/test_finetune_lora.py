"""LoRA per embodiment: a second embodiment fine-tuned onto a checkpoint leaves the base weights
bit-identical and the first embodiment's predictions unchanged; its adapter files load with peft."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from data_pipelines.pipeline import DatasetConfig, PipelineConfig
from finetune.config import LoraSettings, TrainConfig
from finetune.trainer import train
from tests.finetune_helpers import toy_spec, write_toy_dataset
from vla.config import tiny_config
from vla.policy import VLAPolicy

pytestmark = pytest.mark.slow  # two short training runs (~30 s)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    arm = write_toy_dataset(d, "toy_arm", episodes=2, steps=16)
    cart = write_toy_dataset(d, "toy_cart", episodes=2, steps=16, seed=1,
                             spec=toy_spec("toy_cart", action_dim=4, state_dim=5, cameras=("front",)))
    return arm, cart


def _data(path):
    return PipelineConfig(datasets=(DatasetConfig(str(path)),), horizon=8, image_size=(64, 64))


def _obs(spec, seed=0):
    rng = np.random.default_rng(seed)
    return {"images": {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in spec.cameras},
            "state": rng.normal(size=spec.state_dim).astype(np.float32), "prompt": "lift the cube"}


@pytest.fixture(scope="module")
def trained(datasets, tmp_path_factory):
    torch.set_num_threads(1)
    arm, cart = datasets
    root = tmp_path_factory.mktemp("runs")
    base = train(VLAPolicy.create(tiny_config(), [toy_spec("toy_arm")]), _data(arm),
                 TrainConfig(steps=2, batch_size=4, warmup_steps=1, tensorboard=False, progress=False), root / "base")
    second = train(VLAPolicy.from_pretrained(base.policy_dir), _data(cart),
                   TrainConfig(steps=3, batch_size=4, warmup_steps=1, lr=1e-2, tensorboard=False, progress=False,
                               lora=LoraSettings(rank=4, alpha=8)), root / "cart")
    return base.policy_dir, second.policy_dir, second


def test_base_weights_bit_identical_and_first_embodiment_unchanged(trained):
    base_dir, lora_dir, result = trained
    before, after = load_file(str(base_dir / "model.safetensors")), load_file(str(lora_dir / "model.safetensors"))
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert result.trainable_params < result.total_params / 2
    p0, p1 = VLAPolicy.from_pretrained(base_dir), VLAPolicy.from_pretrained(lora_dir)
    spec = p0.spec("toy_arm")
    obs = [_obs(spec, s) for s in range(3)]
    a0 = p0.predict(obs, embodiment="toy_arm", seed=0)
    a1 = p1.predict(obs, embodiment="toy_arm", seed=0)
    for x, y in zip(a0, a1):
        np.testing.assert_array_equal(x, y)
    cart = p1.spec("toy_cart")
    out = p1.predict([_obs(cart)], embodiment="toy_cart", seed=0)[0]
    assert out.shape == (8, 4)
    # switching back to the first embodiment after using the adapter gives the same actions again
    np.testing.assert_array_equal(p1.predict(obs, embodiment="toy_arm", seed=0)[0], a0[0])


def test_new_embodiment_files_and_peft_loadable(trained):
    base_dir, lora_dir, _ = trained
    assert (lora_dir / "embodiments" / "toy_cart.json").exists()
    spec = json.loads((lora_dir / "embodiments" / "toy_cart.json").read_text())
    assert spec["action_dim"] == 4 and spec["action_stats"] is not None
    ad = lora_dir / "adapters" / "toy_cart"
    assert (ad / "adapter_config.json").exists() and (ad / "adapter_model.safetensors").exists()
    weights = load_file(str(ad / "adapter_model.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # the adapter was trained

    from peft import PeftModel
    from transformers import AutoConfig, AutoModel

    from vla.backbones.embedded import minilm_path

    lm_cfg = AutoConfig.from_pretrained(str(minilm_path()), local_files_only=True)
    lm_cfg.num_hidden_layers = tiny_config().backbone.num_lm_layers
    lm = AutoModel.from_config(lm_cfg, add_pooling_layer=False)
    peft_model = PeftModel.from_pretrained(lm, str(ad))
    loaded = {k: v for k, v in peft_model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(weights)
    for k, v in weights.items():
        key = k.replace(".weight", ".default.weight")
        assert torch.equal(loaded[key], v), k
