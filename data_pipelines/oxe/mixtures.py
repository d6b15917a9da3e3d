"""Named OXE mixtures with their published sampling weights, resolved against a data directory.

Transcribed from OpenVLA (``prismatic/vla/datasets/rlds/oxe/mixtures.py``, ``OXE_NAMED_MIXTURES``) and Octo
(``octo/data/oxe/oxe_dataset_mixes.py``, ``OXE_NAMED_MIXES``). Names are ``openvla/<mix>`` and ``octo/<mix>``; a
bare ``<mix>`` works when only one of them defines it. As in both, a member listed twice keeps its first weight,
and the weights are *relative*: a member is drawn with probability proportional to weight x its number of steps
(both projects' default ``balance_weights``), see :class:`data_pipelines.pipeline.PipelineConfig`.
Members are looked up as ``<data_dir>/<name>/<version>`` under their registry name or any alias (OpenVLA's
``bridge_orig`` is the ``bridge_dataset`` directory renamed); ``data_dir`` may be a ``gs://``-style URL.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_pipelines.oxe import _ALIASES, canonical_name, get_entry

_RTX = (("fractal20220817_data", 0.54087122203), ("kuka", 0.8341046294))
_RTX_TAIL = (("taco_play", 2.0), ("jaco_play", 2.0), ("berkeley_cable_routing", 3.0), ("roboturk", 1.0))
_OCTO_RTX = (*_RTX, ("bridge_dataset", 1.0), *_RTX_TAIL, ("nyu_door_opening_surprising_effectiveness", 5.0),
             ("viola", 2.0), ("berkeley_autolab_ur5", 1.0), ("toto", 1.0))
_OVLA_RTX = (*_RTX, ("bridge_orig", 1.0), *_RTX_TAIL, ("viola", 2.0), ("berkeley_autolab_ur5", 1.0), ("toto", 1.0))
_X = "_converted_externally_to_rlds"
_FRANKA = (("taco_play", 1.0), ("berkeley_cable_routing", 1.0), ("viola", 1.0), ("toto", 1.0),
           ("stanford_hydra_dataset" + _X, 1.0), ("austin_buds_dataset" + _X, 3.0),
           ("nyu_franka_play_dataset" + _X, 3.0), ("maniskill_dataset" + _X, 0.1),
           ("furniture_bench_dataset" + _X, 0.1), ("cmu_franka_exploration_dataset" + _X, 5.0),
           ("austin_sailor_dataset" + _X, 1.0), ("austin_sirius_dataset" + _X, 1.0), ("berkeley_rpt" + _X, 1.0),
           ("kaist_nonprehensile" + _X, 3.0), ("stanford_robocook" + _X, 1.0), ("iamlab_cmu_pickup_insert" + _X, 1.0),
           ("utaustin_mutex", 1.0), ("cmu_play_fusion", 1.0))
_SOUP_HEAD = (*_RTX, ("taco_play", 2.0), ("jaco_play", 1.0), ("berkeley_cable_routing", 1.0), ("roboturk", 2.0))
_SOUP_MID = (("viola", 2.0), ("berkeley_autolab_ur5", 2.0), ("toto", 1.0), ("language_table", 0.1),
             ("stanford_hydra_dataset" + _X, 2.0), ("austin_buds_dataset" + _X, 1.0),
             ("nyu_franka_play_dataset" + _X, 3.0), ("furniture_bench_dataset" + _X, 0.1),
             ("ucsd_kitchen_dataset" + _X, 2.0), ("austin_sailor_dataset" + _X, 1.0),
             ("austin_sirius_dataset" + _X, 1.0))
_SOUP_TAIL = (("dlr_edan_shared_control" + _X, 1.0), ("iamlab_cmu_pickup_insert" + _X, 1.0), ("utaustin_mutex", 1.0),
              ("berkeley_fanuc_manipulation", 2.0), ("cmu_stretch", 1.0))
_OVLA_SOUP = (*_SOUP_HEAD[:2], ("bridge_orig", 1.0), *_SOUP_HEAD[2:], *_SOUP_MID, *_SOUP_TAIL)
_OVLA_PLUS_NEW = (("bc_z", 0.2), ("fmb_dataset", 1.0), ("dobbe", 0.2))

MIXTURES: dict[str, tuple[tuple[str, float], ...]] = {
    "openvla/bridge": (("bridge_orig", 1.0),),
    "openvla/bridge_rt_1": (("bridge_orig", 1.0), ("fractal20220817_data", 1.0)),
    "openvla/rtx": _OVLA_RTX,
    "openvla/rtx_franka": (*_OVLA_RTX, *_FRANKA),
    "openvla/oxe_magic_soup": _OVLA_SOUP,
    "openvla/oxe_magic_soup_plus": (*_OVLA_SOUP, *_OVLA_PLUS_NEW, ("droid", 0.06)),
    "openvla/oxe_magic_soup_plus_minus": (("fractal20220817_data", 1.0),
                                          *(m for m in _OVLA_SOUP[1:] if m[0] != "language_table"), *_OVLA_PLUS_NEW),
    "octo/bridge": (("bridge_dataset", 1.0),),
    "octo/rtx": _OCTO_RTX,
    "octo/rtx_franka": (*_OCTO_RTX, *_FRANKA),
    "octo/oxe_magic_soup": (*_SOUP_HEAD[:2], ("bridge_dataset", 1.0), *_SOUP_HEAD[2:],
                            ("nyu_door_opening_surprising_effectiveness", 1.0), *_SOUP_MID, ("bc_z", 0.2),
                            *_SOUP_TAIL),
}


@dataclass(frozen=True)
class Member:
    """One mixture member: its registry name, published weight and the directory found for it (None: missing)."""

    name: str
    weight: float
    path: str | None


def mixture_names() -> list[str]:
    return sorted(MIXTURES)


def mixture(name: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """(full name, members with first-wins de-duplication) for ``name`` (``octo/..``, ``openvla/..`` or bare)."""
    full = [name] if name in MIXTURES else [m for m in MIXTURES if m.split("/", 1)[1] == name]
    if len(full) != 1:
        why = f"ambiguous: {' or '.join(full)}" if full else "unknown"
        raise ValueError(f"--data-mix {name}: {why}; named mixtures: {mixture_names()}")
    seen: dict[str, float] = {}
    for member, weight in MIXTURES[full[0]]:
        seen.setdefault(member, weight)
    return full[0], tuple(seen.items())


def _dir_names(member: str) -> list[str]:
    canon = canonical_name(member)
    names = [member, canon] + sorted(a for a, c in _ALIASES.items() if c == canon)
    return list(dict.fromkeys(names))


def resolve(name: str, data_dir: str) -> tuple[str, list[Member]]:
    """Find every member of mixture ``name`` under ``data_dir`` (local path or ``scheme://`` URL)."""
    from data_pipelines.rlds import fs

    full, members = mixture(name)
    out = []
    for member, weight in members:
        found = None
        for d in _dir_names(member):
            cand = fs.join(data_dir, d)
            if fs.isdir(cand):
                try:
                    found = fs.version_dir(cand)
                    break
                except FileNotFoundError:
                    continue
        out.append(Member(canonical_name(member), weight, found))
    return full, out


def missing_error(full: str, data_dir: str, members: list[Member]) -> str:
    missing = [m.name for m in members if m.path is None]
    unreg = [m for m in missing if _unregistered(m)]
    note = f" ({', '.join(unreg)} not registered: no published spec)" if unreg else ""
    return (f"--data-mix {full}: {len(missing)} of {len(members)} member datasets not found under {data_dir} "
            f"(expected <data-dir>/<name>/<version>/dataset_info.json): {', '.join(missing)}{note}; download them "
            f"or pass --allow-missing to train on the {len(members) - len(missing)} present")


def _unregistered(name: str) -> bool:
    try:
        get_entry(name)
        return False
    except KeyError:
        return True


DEFAULT_CAMERAS = ("primary", "wrist")  # what a mixture trains on by default (Octo's choice for its soups)


def dataset_configs(name: str, data_dir: str, *, allow_missing: bool = False,
                    cameras: tuple[str, ...] | None = None, report=print):
    """(full mixture name, ``DatasetConfig`` s of the members present under ``data_dir``) with published weights.

    Missing members raise one ``FileNotFoundError`` naming them all, unless ``allow_missing`` (then they are
    reported and skipped; at least one must be present). ``cameras``: preference list of standardized cameras;
    each member keeps those it has (default ``primary``, ``wrist``), or else its first camera.
    """
    from data_pipelines.pipeline import DatasetConfig

    full, members = resolve(name, data_dir)
    missing = [m.name for m in members if m.path is None]
    if missing and (not allow_missing or len(missing) == len(members)):
        raise FileNotFoundError(missing_error(full, data_dir, members))
    if missing:
        report(f"--data-mix {full}: skipping {len(missing)} missing member datasets (--allow-missing): "
               f"{', '.join(missing)}")
    pref = tuple(cameras) if cameras else DEFAULT_CAMERAS
    out = []
    for m in members:
        if m.path is None:
            continue
        cams = get_entry(m.name).spec.cameras
        keep = tuple(c for c in pref if c in cams) or cams[:1]
        out.append(DatasetConfig(path=str(m.path), name=m.name, weight=m.weight, cameras=keep))
    return full, tuple(out)
