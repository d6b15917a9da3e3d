"""Batched train-time augmentation (data_pipelines.augment) against independent oracles: numpy formulas,
torchvision's per-image ``v2.functional`` ops, linear ramps through the crop, rectangles found in the output."""

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from data_pipelines.augment import LIGHT, STRONG, BatchAugmentConfig, augment_images, batch_generator, preset


def _images(b=8, n=2, h=48, w=48, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (b, n, 3, h, w), dtype=np.uint8))


def _aug(x, cfg, mask=None, seed=0, step=0, micro=0):
    return augment_images(x, mask, cfg, batch_generator(seed, step, micro))


def _round(v: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(v, 0, 255) + 0.5).astype(np.uint8)


@pytest.mark.parametrize("f", [0.75, 1.25])
def test_brightness_with_a_known_factor_is_x_times_f_clipped(f):
    x = _images()
    out = _aug(x, BatchAugmentConfig(brightness=(f, f))).numpy()
    assert np.array_equal(out, _round(x.numpy().astype(np.float64) * f))


@pytest.mark.parametrize("op,f", [("contrast", 0.6), ("contrast", 1.4), ("saturation", 0.3), ("saturation", 1.7)])
def test_contrast_and_saturation_match_torchvision_per_image(op, f):
    x = _images()
    out = _aug(x, BatchAugmentConfig(**{op: (f, f)})).numpy().astype(int)
    fn = {"contrast": TF.adjust_contrast, "saturation": TF.adjust_saturation}[op]
    ref = np.stack([[_round(fn(img.float() / 255, f).numpy() * 255) for img in cams] for cams in x]).astype(int)
    diff = np.abs(out - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


@pytest.mark.parametrize("turns", [1 / 3, -1 / 3])
def test_a_third_turn_of_hue_permutes_channels_like_torchvision_hsv(turns):
    x = _images()
    out = _aug(x, BatchAugmentConfig(hue=(turns, turns))).numpy().astype(int)
    # red -> green -> blue -> red for +1/3 (HSV hue +120 deg)
    expected = x.numpy()[:, :, [2, 0, 1] if turns > 0 else [1, 2, 0]].astype(int)
    assert np.abs(out - expected).max() <= 1
    tv = np.stack([[TF.adjust_hue(img, turns).numpy() for img in cams] for cams in x]).astype(int)
    assert np.abs(out - tv).max() <= 1


def test_crop_with_scale_and_ratio_one_is_the_identity():
    x = _images()
    assert torch.equal(_aug(x, BatchAugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))), x)
    assert torch.equal(_aug(x, BatchAugmentConfig()), x)  # the default config is off
    # through the resampling itself (a box a hair smaller than the image): every pixel samples itself
    out = _aug(x, BatchAugmentConfig(crop_scale=(1 - 1e-6, 1.0), crop_ratio=(1 - 1e-6, 1 + 1e-6)))
    assert (out.int() - x.int()).abs().max() <= 1


def test_crop_resamples_a_linear_ramp_to_a_linear_ramp_per_image():
    """A quarter-area square crop of R = 2x + 20, G = 2y + 20 (bilinear is exact on ramps) gives R = i + c with one
    c per image: slope w/W * 2 = 1 and an offset from the box's position, within the image."""
    b, n, s = 6, 2, 64
    ramp = 2 * np.arange(s) + 20
    img = np.zeros((3, s, s), np.uint8)
    img[0], img[1], img[2] = ramp[None, :], ramp[:, None], 77
    x = torch.from_numpy(np.broadcast_to(img, (b, n, 3, s, s)).copy())
    out = _aug(x, BatchAugmentConfig(crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0))).numpy().astype(int)
    i = np.arange(s)
    r_off = out[:, :, 0, 1:-1, 1:-1] - i[None, None, None, 1:-1]  # R - column index
    g_off = out[:, :, 1, 1:-1, 1:-1] - i[None, None, 1:-1, None]  # G - row index
    for off in (r_off, g_off):
        per_image = off.reshape(b * n, -1)
        assert (per_image == per_image[:, :1]).all()  # linear with slope exactly 1 (w = W / 2)
        c = per_image[:, 0]
        assert c.min() >= 19 and c.max() <= 2 * (s - s // 2) + 20  # box inside the image: 2 x0 + 19.5, x0 <= 32
        assert len(set(c.tolist())) > b * n // 2  # every image and camera has its own box
    assert (out[:, :, 2] == 77).all()


def _changed_boxes(x: np.ndarray, out: np.ndarray):
    """(bounding box, changed mask, pixels) of each image's changed pixels (None when unchanged)."""
    for src, dst in zip(x.reshape(-1, *x.shape[2:]), out.reshape(-1, *out.shape[2:])):
        changed = (src != dst).any(0)
        if not changed.any():
            yield None
            continue
        ys, xs = np.nonzero(changed)
        yield (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1), changed, dst


@pytest.mark.parametrize("fill", ["color", "noise"])
def test_erasing_fills_exactly_one_box_of_the_configured_size(fill):
    area, ratio = (0.05, 0.15), (0.5, 2.0)
    x = torch.from_numpy(np.broadcast_to(np.array([10, 20, 30], np.uint8)[:, None, None], (8, 2, 3, 40, 40)).copy())
    out = _aug(x, BatchAugmentConfig(erase_p=1.0, erase_area=area, erase_ratio=ratio, erase_fill=fill)).numpy()
    for found in _changed_boxes(x.numpy(), out):
        assert found is not None  # p = 1: every image has its box
        (y0, y1, x0, x1), changed, dst = found
        h, w = y1 - y0, x1 - x0
        assert changed[y0:y1, x0:x1].all() and changed.sum() == h * w  # exactly a filled rectangle
        assert area[0] * 1600 - 2 * (h + w) <= h * w <= area[1] * 1600 + 2 * (h + w)  # rounding of sides
        assert ratio[0] * h - 1 <= w <= ratio[1] * h + 1
        box = dst[:, y0:y1, x0:x1].reshape(3, -1)
        if fill == "color":
            assert (box == box[:, :1]).all()
        else:
            assert len(np.unique(box[0])) > min(h * w // 4, 50)


def test_overlays_paste_single_colour_shapes_of_the_configured_size():
    size = (0.2, 0.4)
    x = torch.from_numpy(np.full((16, 2, 3, 50, 50), 128, np.uint8))
    out = _aug(x, BatchAugmentConfig(overlays=1, overlay_p=1.0, overlay_size=size)).numpy()
    fills = []
    for found in _changed_boxes(x.numpy(), out):
        if found is None:  # the colour drawn happened to equal the background (or the shape lies off-image)
            continue
        (y0, y1, x0, x1), changed, dst = found
        colours = dst[:, changed]
        assert (colours == colours[:, :1]).all()
        # a shape centred inside the image shows at least half of each side; at most its full side (+1 px)
        assert y1 - y0 <= size[1] * 50 + 1 and x1 - x0 <= size[1] * 50 + 1
        assert y1 - y0 >= size[0] * 50 / 2 - 1 and x1 - x0 >= size[0] * 50 / 2 - 1
        fills.append(changed.sum() / ((y1 - y0) * (x1 - x0)))
    fills = np.array(fills)
    assert len(fills) >= 28
    assert (fills > 0.99).any() and ((fills > 0.6) & (fills < 0.9)).any()  # rectangles and ellipses (pi/4)


def test_same_seed_step_micro_same_output_otherwise_different_and_no_global_rng():
    x = _images()
    torch.manual_seed(1)
    a = _aug(x, STRONG, seed=3, step=5, micro=1)
    torch.manual_seed(2)  # the global RNG plays no part ...
    b = _aug(x, STRONG, seed=3, step=5, micro=1)
    assert torch.equal(a, b)
    torch.manual_seed(2)
    _aug(x, STRONG, seed=3, step=5, micro=1)
    assert torch.equal(torch.get_rng_state(), torch.random.manual_seed(2).get_state())  # ... and is not advanced
    for other in ({"step": 6, "micro": 1, "seed": 3}, {"step": 5, "micro": 0, "seed": 3}, {"step": 5, "micro": 1}):
        assert not torch.equal(a, _aug(x, STRONG, **other))


def test_every_sample_and_camera_draws_its_own_parameters():
    x = torch.full((16, 3, 3, 8, 8), 100, dtype=torch.uint8)
    out = _aug(x, BatchAugmentConfig(brightness=(0.5, 1.5))).float()
    factors = (out[:, :, 0, 0, 0] / 100).flatten()
    assert factors.min() >= 0.5 - 0.01 and factors.max() <= 1.5 + 0.01
    assert len(set(out[:, :, 0, 0, 0].flatten().tolist())) > 30  # 48 slots, (almost) all different


def test_absent_cameras_stay_zero_and_do_not_change_present_ones():
    x = _images(b=6, n=3)
    mask = torch.ones(6, 3, dtype=torch.bool)
    mask[::2, 1] = False
    mask[1, :] = False
    cfg = STRONG.replace(erase_fill="color")  # noise pixels are drawn per erased (present) image
    out = _aug(x, cfg, mask)
    assert (out[~mask] == 0).all()
    full = _aug(x, cfg, torch.ones(6, 3, dtype=torch.bool))
    assert torch.equal(out[mask], full[mask])  # a slot's draws do not depend on the others' presence
    assert out.shape == x.shape and out.dtype == torch.uint8


def test_presets_and_bad_config_errors():
    assert preset("none") is None and preset("light") == LIGHT and preset("strong") == STRONG
    with pytest.raises(ValueError, match="--augment 'huge'.*none, light, strong"):
        preset("huge")
    with pytest.raises(ValueError, match="BatchAugmentConfig.brightness: low 1.5 > high 0.5"):
        BatchAugmentConfig(brightness=(1.5, 0.5))
    with pytest.raises(ValueError, match="BatchAugmentConfig.crop_scale"):
        BatchAugmentConfig(crop_scale=(0.5, 1.2))
    with pytest.raises(ValueError, match="BatchAugmentConfig.erase_fill"):
        BatchAugmentConfig(erase_fill="blur")
    with pytest.raises(ValueError, match=r"uint8 \[B, N_cam, 3, H, W\].*torch.float32"):
        augment_images(torch.zeros(2, 1, 3, 8, 8), None, LIGHT, batch_generator(0, 0, 0))
    with pytest.raises(ValueError, match="image_mask shape"):
        augment_images(torch.zeros(2, 1, 3, 8, 8, dtype=torch.uint8), torch.ones(2, 2, dtype=torch.bool), LIGHT,
                       batch_generator(0, 0, 0))


def test_channel_gain_tints_white_and_scales_each_channel_within_its_range():
    x = torch.full((16, 2, 3, 6, 6), 200, dtype=torch.uint8)
    out = _aug(x, BatchAugmentConfig(channel_gain=(0.6, 1.2))).float()[..., 0, 0] / 200  # [16, 2, 3] gains
    assert out.min() >= 0.6 - 0.01 and out.max() <= 1.2 + 0.01
    assert (out.max(-1).values - out.min(-1).values > 0.05).float().mean() > 0.8  # R, G, B drawn apart: a tint
    white = _aug(torch.full((4, 1, 3, 6, 6), 255, dtype=torch.uint8), BatchAugmentConfig(channel_gain=(0.5, 0.5)))
    assert (white == 128).all()  # 255 * 0.5 = 127.5, rounded half up


def test_crop_points_are_roi_align_points():
    """The crop's resampling (one grid_sample) against torchvision.ops.roi_align(aligned=True, sampling_ratio=1)."""
    from torchvision.ops import roi_align

    from data_pipelines.augment import _crop

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 40, 40), generator=g).float()
    wh = 8 + torch.rand(12, 2, generator=g) * 32
    xy = torch.rand(12, 2, generator=g) * (40 - wh)
    box = torch.cat([xy, xy + wh], 1)
    ref = roi_align(x, torch.cat([torch.arange(12.0)[:, None], box], 1), output_size=(40, 40), sampling_ratio=1,
                    aligned=True)
    assert torch.allclose(_crop(x, box), ref, atol=0.02)
