"""Registry of Open X-Embodiment datasets by their real TFDS names: published feature specs, key mappings, embodiments.

Every dataset of Octo's and OpenVLA's OXE registries whose feature spec is published is here
(:mod:`.features_google`, :mod:`.features_labs`), with the mapping of its keys onto the shared vocabulary
(:mod:`.mappings_google`, :mod:`.mappings_labs`). Standardized vocabulary: cameras ``primary`` (third person),
``secondary``/``tertiary``/``quaternary`` (more third-person views), ``wrist`` (``wrist_2``, ``wrist_225``: more hand
cameras); actions keep each robot's own dims with the gripper made uniform ([0, 1], 1 = open); state is the robot's
own proprioception (layout in ``state_space``). Language: each entry names its instruction source (step
``language_instruction``, observation ``natural_language_instruction`` or language-table UTF-8 codes); a blank
instruction gives the empty prompt "". :data:`UNSPECIFIED` lists registry names without a published spec here.
"""

from __future__ import annotations

from data_pipelines.errors import UnknownDatasetError
from data_pipelines.oxe.features_google import FEATURES as _F_GOOGLE
from data_pipelines.oxe.features_labs import FEATURES as _F_LABS
from data_pipelines.oxe.mappings_google import MAPPINGS as _M_GOOGLE
from data_pipelines.oxe.mappings_labs import MAPPINGS as _M_LABS
from data_pipelines.standardize import DatasetEntry, KeyMapping, resolve_path, split_slice

_CATALOG = "https://www.tensorflow.org/datasets/catalog/"
FEATURES: dict[str, dict] = {**_F_GOOGLE, **_F_LABS}
MAPPINGS: dict[str, KeyMapping] = {**_M_GOOGLE, **_M_LABS}

_ALIASES = {"rt1": "fractal20220817_data", "fractal": "fractal20220817_data", "bridge_v2": "bridge_dataset",
            "bridge_orig": "bridge_dataset", "bridge_oxe": "bridge", "language_table_dataset": "language_table",
            "stanford_hydra": "stanford_hydra_dataset_converted_externally_to_rlds", "fmb_dataset": "fmb",
            "roboset": "robo_set", "droid_100": "droid", "r2d2_faceblur": "droid"}

# names in Octo's / OpenVLA's OXE registries with no published feature spec found (catalog page or features.json)
UNSPECIFIED: dict[str, str] = {
    "cmu_playing_with_food": "in Octo's/OpenVLA's registries; no TFDS catalog page or features.json found",
    "robo_net": "the OXE copy's spec is unpublished (TFDS 'robonet' is a different, non-RLDS release)",
    "rh20t": "OpenVLA-only re-export; no published spec found",
}


def _dims(mapping: KeyMapping, feats: dict) -> tuple[int, int]:
    import numpy as np

    def width(key: str) -> int:
        path, lo, hi = split_slice(key)
        leaf = resolve_path(feats, path)
        if leaf is None:
            raise ValueError(f"mapping {mapping.name!r}: key {key!r} is not in the published feature spec")
        n = int(np.prod(leaf["shape"])) if leaf["shape"] else 1
        return len(range(n)[slice(lo, hi)]) if (lo, hi) != (None, None) else n

    return sum(width(k) for k in mapping.state), sum(width(k) for k in mapping.action)


def _entry(name: str) -> DatasetEntry:
    mapping, feats = MAPPINGS[name], FEATURES[name]
    s, a = _dims(mapping, feats)
    spec = mapping.embodiment(state_dim=s, action_dim=a)
    return DatasetEntry(name=name, features=feats, mapping=mapping, spec=spec,
                        aliases=tuple(k for k, v in _ALIASES.items() if v == name), source=_CATALOG + name)


REGISTRY: dict[str, DatasetEntry] = {n: _entry(n) for n in sorted(FEATURES)}


def known_datasets() -> list[str]:
    return sorted(REGISTRY)


def canonical_name(name: str) -> str:
    """The registered TFDS name for ``name`` (resolving aliases); unknown names come back unchanged."""
    return _ALIASES.get(name, name)


def get_entry(name: str) -> DatasetEntry:
    """The registry entry for a dataset name (or alias); raises listing the known names."""
    key = canonical_name(name)
    if key not in REGISTRY:
        hint = f" ({name}: {UNSPECIFIED[key]})" if key in UNSPECIFIED else ""
        raise UnknownDatasetError(f"unknown dataset {name!r}{hint}; registered: {known_datasets()} "
                                  f"(aliases: {sorted(_ALIASES)}); for other data pass a key mapping file")
    return REGISTRY[key]


def summary(entry: DatasetEntry) -> str:
    """One line: embodiment, cameras, state/action dims and spaces, gripper, control rate, instruction source."""
    m, s = entry.mapping, entry.spec
    grip = f"gripper {list(s.gripper_dims)} {m.gripper_convention}" if s.gripper_dims else "no gripper"
    instr = "utf8-codes" if m.instruction_encoding == "utf8_codes" else (m.instruction or "none").split("/")[-1]
    state = f"({s.state_space})" if s.state_dim else "(no proprioception)"
    return (f"{s.name}: cams={','.join(s.cameras)} state={s.state_dim} {state} action={s.action_dim} "
            f"({s.action_space}) {grip} {s.control_hz:g}Hz lang={instr}")
