"""Generalization factors: perturbations applied by editing the MuJoCo model/scene.

A condition is a :class:`FactorSetting` ``(name, severity 0..3, seed)``; ``"lighting@2"`` parses to
one. Severity 0 is nominal. Per episode the perturbation is drawn from
``rng(factor seed, episode seed, factor name)``, so (task, factor, severity, seed, episode seed)
reproduces it exactly. Two factors edit the scene at build time (and recompile it once):
``object_size`` (scales the target object's geoms/meshes by a fixed factor of the condition) and
``distractors`` (adds a pool of hidden visual-only objects that episodes place on the table).
Every other factor edits ``env.model`` arrays after ``reset`` and is undone before the next.
``apply`` returns what it drew (colours, gains, counts) for the episode metadata of collected demos;
per-episode randomized severities (:class:`sim_eval.randomize.Randomize` items) are drawn by :class:`FactorSet`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# the object each task is about (its body name in the compiled model)
TARGET_BODY = {"Lift": "cube_main", "Stack": "cubeA_main", "PickPlaceCan": "Can_main", "Door": "Door_latch"}
N_DISTRACTORS = 6


@dataclass(frozen=True)
class FactorSetting:
    name: str
    severity: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in FACTORS:
            raise ValueError(f"unknown factor {self.name!r}; choose from {sorted(FACTORS)}")
        if not 0 <= int(self.severity) <= 3:
            raise ValueError(f"factor {self.name!r}: severity must be 0..3, got {self.severity}")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.severity}"

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> FactorSetting:
        """``name`` (severity 2) or ``name@severity``."""
        name, _, sev = text.partition("@")
        try:
            return cls(name.strip(), int(sev) if sev else 2, seed)
        except ValueError as e:
            raise ValueError(f"bad factor {text!r}: {e}") from e

    def rng(self, episode_seed: int) -> np.random.Generator:
        return np.random.default_rng([int(self.seed), int(episode_seed), zlib.crc32(self.name.encode())])


# -- helpers ------------------------------------------------------------------------------------------
def _body_geoms(model, body_name: str) -> list[int]:
    bid = model.body_name2id(body_name)
    return [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid]


def _visual_geoms(model, body_names: Sequence[str]) -> list[int]:
    out = []
    for b in body_names:
        out += [g for g in _body_geoms(model, b) if model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0]
    return out


def _surface_geoms(env) -> list[int]:
    model = env.model
    names = [n for n in ("table", "bin1", "bin2") if n in model.body_names]
    return _visual_geoms(model, names)


def _floats(x) -> list[float]:
    return [float(v) for v in np.ravel(x)]


def _random_color(rng: np.random.Generator) -> np.ndarray:
    import colorsys

    return np.array([*colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.3, 1.0)), 1.0])


MIN_HUE_GAP = 0.12  # distractor hue vs each task object's: a distractor is never a copy of an object the task names


def _apparent_color(model, g: int) -> np.ndarray:
    """A geom's rgb as rendered on average: its (material) rgba times its material's mean texture color."""
    rgb = _geom_color(model, g)[:3]
    raw = getattr(model, "_model", model)
    m = raw.geom_matid[g]
    tex = int(np.max(raw.mat_texid[m])) if m >= 0 else -1
    if tex >= 0:
        a, n = raw.tex_adr[tex], raw.tex_width[tex] * raw.tex_height[tex] * raw.tex_nchannel[tex]
        texels = np.asarray(raw.tex_data[a:a + n]).reshape(-1, raw.tex_nchannel[tex])[:, :3]
        rgb = rgb * texels.mean(0) / 255.0
    return rgb


def _hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def _distinct_color(rng: np.random.Generator, avoid: Sequence[np.ndarray]) -> np.ndarray:
    """A random color whose hue keeps :data:`MIN_HUE_GAP` from every saturated color in ``avoid`` (rgb/rgba)."""
    import colorsys

    hues = [h for h, s, _ in (colorsys.rgb_to_hsv(*np.clip(c[:3], 0, 1)) for c in avoid) if s >= 0.25]
    for _ in range(100):
        color = _random_color(rng)
        hue = colorsys.rgb_to_hsv(*color[:3])[0]
        if all(_hue_gap(hue, h) >= MIN_HUE_GAP for h in hues):
            return color
    return color


def _geom_color(model, g: int) -> np.ndarray:
    m = model.geom_matid[g]
    return np.array(model.mat_rgba[m] if m >= 0 else model.geom_rgba[g], dtype=np.float64)


def _free_joint_qpos(env, body_name: str) -> slice | None:
    model = env.model
    bid = model.body_name2id(body_name)
    if model.body_jntnum[bid] == 0 or model.jnt_type[model.body_jntadr[bid]] != 0:  # 0 = mjJNT_FREE
        return None
    adr = model.jnt_qposadr[model.body_jntadr[bid]]
    return slice(adr, adr + 7)


def _axis_angle_quat(axis, angle: float) -> np.ndarray:
    """MuJoCo (wxyz) quaternion of a rotation by ``angle`` about ``axis``."""
    import mujoco

    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, np.asarray(axis, np.float64), float(angle))
    return q


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MuJoCo (wxyz) quaternion product ``a * b``."""
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mulQuat(q, np.asarray(a, np.float64), np.asarray(b, np.float64))
    return q


# -- factors ------------------------------------------------------------------------------------------
class Factor:
    """One perturbation. ``changes_solution``: whether the expert's plan may need to change."""

    visual = False
    changes_solution = False

    def edit_xml(self, root: ET.Element, env, s: FactorSetting) -> bool:
        return False

    def apply(self, env, s: FactorSetting, rng: np.random.Generator) -> dict | None:
        """Edit the model for this episode; return what was drawn (JSON-able) or None."""
        return None


class CameraPose(Factor):
    """Moves (up to 4 cm x severity) and tilts (up to 4 deg x severity) the third-person camera."""

    visual = True

    def apply(self, env, s, rng):
        model = env.model
        cid = env.cam_id("agentview")
        d = rng.normal(size=3)
        model.cam_pos[cid] += d / np.linalg.norm(d) * 0.04 * s.severity
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        ang = np.deg2rad(4.0 * s.severity) * rng.choice([-1, 1])
        model.cam_quat[cid] = _quat_mul(_axis_angle_quat(axis, ang), model.cam_quat[cid])
        return {"shift": _floats(d / np.linalg.norm(d) * 0.04 * s.severity), "axis": _floats(axis),
                "tilt_deg": float(np.rad2deg(ang))}


class Lighting(Factor):
    """Scales light brightness (x e^(+-0.4 severity)), tints it, and moves the light."""

    visual = True

    def apply(self, env, s, rng):
        model = env.model
        gain = np.exp(rng.choice([-1, 1]) * 0.4 * s.severity)
        tint = 1.0 + rng.uniform(-0.15, 0.15, size=3) * s.severity
        for i in range(model.nlight):
            model.light_diffuse[i] = np.clip(model.light_diffuse[i] * gain * tint, 0, 1)
            model.light_ambient[i] = np.clip(model.light_ambient[i] * gain, 0, 1)
            model.light_pos[i] += np.r_[rng.uniform(-0.5, 0.5, 2) * s.severity, 0.0]
        model.vis.headlight.diffuse[:] = np.clip(np.asarray(model.vis.headlight.diffuse) * gain, 0, 1)
        model.vis.headlight.ambient[:] = np.clip(np.asarray(model.vis.headlight.ambient) * gain, 0, 1)
        return {"gain": float(gain), "tint": _floats(tint)}


class TableAppearance(Factor):
    """Table (or bins) color/texture: 1 = tinted color, 2 = random plain color, 3 = another texture."""

    visual = True

    def apply(self, env, s, rng):
        model = env.model
        geoms = _surface_geoms(env)
        color = _random_color(rng)
        if s.severity >= 3:
            own = {model.geom_matid[g] for g in geoms}
            cands = [m for m in range(model.nmat) if model.mat_texid[m].max() >= 0 and m not in own
                     and not model.material(m).name.startswith(("robot0", "gripper", "mount"))]
            mat = int(rng.choice(cands)) if cands else -1
            for g in geoms:
                model.geom_matid[g] = mat
                model.geom_rgba[g] = color
            return {"color": _floats(color), "material": model.material(mat).name if mat >= 0 else ""}
        for g in geoms:
            base = _geom_color(model, g)
            model.geom_matid[g] = -1
            model.geom_rgba[g] = 0.5 * base + 0.5 * color if s.severity == 1 else color
            model.geom_rgba[g, 3] = 1.0
        return {"color": _floats(color)}


class ObjectColor(Factor):
    """The target object's color: blended 40 % / 70 % / 100 % toward a random color (texture removed)."""

    visual = True

    def apply(self, env, s, rng):
        model = env.model
        geoms = _visual_geoms(model, [TARGET_BODY[env.task.name]])
        if env.task.name == "Door":
            geoms += _visual_geoms(model, ["Door_door"])
        color = _random_color(rng)
        w = {1: 0.4, 2: 0.7, 3: 1.0}[s.severity]
        for g in geoms:
            base = _geom_color(model, g)
            model.geom_matid[g] = -1
            model.geom_rgba[g] = (1 - w) * base + w * color
            model.geom_rgba[g, 3] = 1.0
        return {"color": _floats(color), "weight": w}


def _scale_of(s: FactorSetting) -> float:
    sign = 1.0 if np.random.default_rng([s.seed, zlib.crc32(b"object_size")]).uniform() < 0.5 else -1.0
    return float(1.0 + sign * 0.12 * s.severity)


class ObjectSize(Factor):
    """Scales the target object (geom sizes / mesh scale) by 1 +- 0.12 x severity (sign from the seed)."""

    changes_solution = True

    def edit_xml(self, root, env, s):
        return self.scale_xml(root, env, _scale_of(s))

    def scale_xml(self, root, env, scale: float) -> bool:
        body_name = TARGET_BODY[env.task.name]
        body = next((b for b in root.iter("body") if b.get("name") == body_name), None)
        if body is None:
            raise ValueError(f"object_size: body {body_name!r} not found in the {env.task.name} scene")
        meshes = {m.get("name"): m for m in root.iter("mesh")}
        for geom in body.iter("geom"):
            if geom.get("mesh"):
                mesh = meshes[geom.get("mesh")]
                old = np.array([float(x) for x in (mesh.get("scale") or "1 1 1").split()])
                if not mesh.get("_scaled"):
                    mesh.set("scale", " ".join(f"{v:.6g}" for v in old * scale))
                    mesh.set("_scaled", "1")
            elif geom.get("size"):
                size = np.array([float(x) for x in geom.get("size").split()]) * scale
                geom.set("size", " ".join(f"{v:.6g}" for v in size))
            if geom.get("pos"):
                pos = np.array([float(x) for x in geom.get("pos").split()]) * scale
                geom.set("pos", " ".join(f"{v:.6g}" for v in pos))
        for site in body.iter("site"):
            if site.get("pos"):
                pos = np.array([float(x) for x in site.get("pos").split()]) * scale
                site.set("pos", " ".join(f"{v:.6g}" for v in pos))
        for mesh in meshes.values():
            mesh.attrib.pop("_scaled", None)
        return True

    def apply(self, env, s, rng):
        return self.lift(env, _scale_of(s))

    def lift(self, env, scale: float) -> dict:
        # objects are placed for their nominal size: lift larger ones so they do not start inside the table
        qs = _free_joint_qpos(env, TARGET_BODY[env.task.name])
        if qs is not None and scale > 1:
            env.sim.data.qpos[qs.start + 2] += 0.03 * (scale - 1) + 0.002
        return {"scale": float(scale)}


class ObjectPose(Factor):
    """Widens the target object's initial position range to +-(3 + 4 x severity) cm, any yaw."""

    changes_solution = True

    def ranges(self, env, s) -> tuple[np.ndarray, float]:
        name = env.task.name
        if name == "PickPlaceCan":
            center = np.array(env.env.bin1_pos[:2])
            return center, min(0.03 + 0.03 * s.severity, 0.12)
        if name == "Door":
            return np.array([0.0, 0.0]), 0.01 + 0.015 * s.severity
        return np.array(env.env.table_offset[:2]), 0.03 + 0.04 * s.severity

    def apply(self, env, s, rng):
        model, data = env.model, env.sim.data
        center, r = self.ranges(env, s)
        body = TARGET_BODY[env.task.name]
        if env.task.name == "Door":  # the door is fixed to the world: shift its base body
            bid = model.body_name2id("Door_main")
            shift = rng.uniform(-r, r, 2)
            model.body_pos[bid, :2] += shift
            return {"shift": _floats(shift)}
        qs = _free_joint_qpos(env, body)
        others = [np.array(data.body_xpos[model.body_name2id(b)][:2]) for b in ("cubeB_main",) if b in model.body_names]
        for _ in range(100):
            xy = center + rng.uniform(-r, r, 2)
            if all(np.linalg.norm(xy - o) > 0.08 for o in others):
                break
        data.qpos[qs.start:qs.start + 2] = xy
        yaw = rng.uniform(0, 2 * np.pi)
        data.qpos[qs.start + 3:qs.start + 7] = _axis_angle_quat((0.0, 0.0, 1.0), yaw)
        data.qvel[model.jnt_dofadr[model.body_jntadr[model.body_name2id(body)]]:][:6] = 0.0
        return {"xy": _floats(xy), "yaw": float(yaw)}


class Distractors(Factor):
    """Places 2 x severity visual-only objects (random shape, size and color) on the table; their hues keep
    :data:`MIN_HUE_GAP` from the task's objects, so none is a second instance of what the instruction names
    (a red box beside "lift the red cube" would make the episode ambiguous, not distracting)."""

    visual = True

    def edit_xml(self, root, env, s):
        world = root.find("worldbody")
        for i in range(N_DISTRACTORS):
            body = ET.SubElement(world, "body", name=f"distractor{i}", pos=f"{i} 5 -3")
            kind = ("box", "cylinder", "sphere")[i % 3]
            size = {"box": "0.02 0.02 0.02", "cylinder": "0.02 0.025", "sphere": "0.022"}[kind]
            ET.SubElement(body, "geom", name=f"distractor{i}_g", type=kind, size=size, contype="0", conaffinity="0",
                          group="1", rgba="0.5 0.5 0.5 1")
        return True

    def apply(self, env, s, rng):
        model, data = env.model, env.sim.data
        if env.task.name == "PickPlaceCan":
            center, r, z = np.array(env.env.bin1_pos[:2]), 0.12, env.env.bin1_pos[2] + 0.025
        elif env.task.name == "Door":
            center, r, z = np.array([-0.25, 0.2]), 0.12, env.env.table_offset[2] + 0.025
        else:
            center, r, z = np.array(env.env.table_offset[:2]), 0.2, env.env.table_offset[2] + 0.025
        bodies = (TARGET_BODY.get(env.task.name, ""), "cubeB_main", *(f"cube_{t}_main" for t in env.task.targets))
        present = [b for b in bodies if b in model.body_names]
        avoid = [np.array(data.body_xpos[model.body_name2id(b)][:2]) for b in present]
        task_colors = [_apparent_color(model, g) for g in _visual_geoms(model, present)]
        placed: list[np.ndarray] = []
        colors = []
        for i in range(min(2 * s.severity, N_DISTRACTORS)):
            for _ in range(200):
                xy = center + rng.uniform(-r, r, 2)
                if all(np.linalg.norm(xy - a) > 0.08 for a in avoid + placed):
                    break
            placed.append(xy)
            bid = model.body_name2id(f"distractor{i}")
            model.body_pos[bid] = [xy[0], xy[1], z]
            g = model.geom_name2id(f"distractor{i}_g")
            model.geom_rgba[g] = _distinct_color(rng, task_colors)
            colors.append(_floats(model.geom_rgba[g]))
        return {"n": len(placed), "xy": [_floats(p) for p in placed], "colors": colors}


class Paraphrase(Factor):
    """Replaces the instruction by a held-out paraphrase (1: close wording, 2: other wording, 3: any + filler);
    a grounded task's paraphrase names the episode's target."""

    def apply(self, env, s, rng):
        target = getattr(env, "target", None)
        p = [t.format(target=target) if target is not None else t for t in env.task.paraphrases]
        if not p:
            return
        pool = {1: p[:2], 2: p[2:] or p, 3: p}[s.severity]
        text = str(rng.choice(pool))
        if s.severity == 3:
            text = str(rng.choice(["please ", "robot, ", "now "])) + text + str(rng.choice(["", " carefully", " now"]))
        env.instruction = text
        return {"instruction": text}


class Dynamics(Factor):
    """Target object mass x (1 + 0.75 s)^+-1 and friction x (1 +- 0.25 s); Door: hinge damping x (1 + s)."""

    changes_solution = True

    def apply(self, env, s, rng):
        model = env.model
        body = TARGET_BODY[env.task.name]
        bid = model.body_name2id(body if env.task.name != "Door" else "Door_door")
        m = (1 + 0.75 * s.severity) ** rng.choice([-1, 1])
        model.body_mass[bid] *= m
        model.body_inertia[bid] *= m
        f = max(0.3, 1 + rng.choice([-1, 1]) * 0.25 * s.severity)
        for g in _body_geoms(model, body):
            model.geom_friction[g, 0] *= f
        if env.task.name == "Door":
            jid = model.joint_name2id(env.env.door.joints[0])
            model.dof_damping[model.jnt_dofadr[jid]] *= 1 + s.severity
        return {"mass_scale": float(m), "friction_scale": float(f)}


FACTORS: dict[str, Factor] = {
    "camera_pose": CameraPose(),
    "lighting": Lighting(),
    "table_color": TableAppearance(),
    "object_color": ObjectColor(),
    "object_size": ObjectSize(),
    "object_pose": ObjectPose(),
    "distractors": Distractors(),
    "paraphrase": Paraphrase(),
    "dynamics": Dynamics(),
}

# factor pairs that one randomized (collection) episode never combines, and why
EXCLUSIVE = {("object_color", "distractors"): "a recoloured target among distractors matches no instruction that "
             "names the target by its color ('lift the red cube'), so the demo would teach the policy to ignore it"}


def episode_severities(randomize: Sequence, episode_seed: int) -> dict[str, int]:
    """Each :class:`sim_eval.randomize.Randomize` item's severity in this episode; of an :data:`EXCLUSIVE` pair that
    both drew one, a coin (a pure function of the pair, factor seed and episode seed) keeps one, the other is 0."""
    sev = {r.name: r.severity(episode_seed) for r in randomize}
    seeds = {r.name: r.seed for r in randomize}
    for a, b in EXCLUSIVE:
        if sev.get(a, 0) > 0 and sev.get(b, 0) > 0:
            coin = np.random.default_rng([int(seeds[a]), int(episode_seed), zlib.crc32(f"{a}|{b}".encode())]).uniform()
            sev[b if coin < 0.5 else a] = 0
    return sev


GENERIC_FACTORS = ("camera_pose", "lighting", "paraphrase")  # the ones that also work on Meta-World
# the ones that edit the one object TARGET_BODY names: not for grounded tasks, whose target changes per episode
TARGET_FACTORS = ("object_color", "object_size", "object_pose", "dynamics")

# model arrays the runtime factors edit; restored to their nominal values before every episode
_SNAPSHOT = ("cam_pos", "cam_quat", "light_diffuse", "light_ambient", "light_pos", "geom_rgba", "geom_matid",
             "body_mass", "body_inertia", "geom_friction", "dof_damping")


class FactorSet:
    """The factors of one env: scene edits at build time, model edits per episode.

    ``factors`` holds :class:`FactorSetting` (or ``"name@sev"``) conditions and
    :class:`sim_eval.randomize.Randomize` items, whose severities are drawn per episode; ``drawn``
    is what the last episode drew for the latter (``{name: {"severity": s, ...}}``)."""

    def __init__(self, factors: Sequence = ()):
        from sim_eval.language import Instruction

        self.instructions = tuple(f for f in factors if isinstance(f, Instruction))  # applied last, in order
        factors = [f for f in factors if not isinstance(f, Instruction)]
        drawn = [hasattr(f, "max_severity") for f in factors]  # Randomize items (that module imports this one)
        self.randomize = tuple(f for f, d in zip(factors, drawn) if d)
        self.settings = tuple(FactorSetting.parse(f) if isinstance(f, str) else f for f, d in zip(factors, drawn)
                              if not d)
        self._nominal: dict[str, np.ndarray] = {}
        self.drawn: dict[str, dict] = {}
        self._base_xml: str | None = None  # randomized object_size: the scene it rescales per episode
        self._scale = 1.0

    def prepare(self, env) -> None:
        active = [s for s in self.settings if s.severity > 0]
        # randomized factors edit the scene at their highest severity (e.g. the distractor pool)
        build = active + [FactorSetting(r.name, r.max_severity, r.seed) for r in self.randomize
                          if r.name != "object_size"]
        if env.task.suite != "robosuite":
            bad = [n for n in [s.name for s in active] + [r.name for r in self.randomize] if n not in GENERIC_FACTORS]
            if bad:
                raise ValueError(f"{env.task.name}: factor(s) {bad} are robosuite-only; on {env.task.suite} use "
                                 f"{sorted(GENERIC_FACTORS)}")
        if env.task.grounded:
            bad = [n for n in [s.name for s in active] + [r.name for r in self.randomize] if n in TARGET_FACTORS]
            if bad:
                raise ValueError(f"{env.task.name}: factor(s) {bad} edit one fixed target object; this task's target "
                                 "changes with the instruction (use camera_pose, lighting, table_color, distractors, "
                                 "paraphrase)")
        if (build or self.randomize) and env.task.suite == "robosuite":
            root = ET.fromstring(env.env.model.get_xml())
            changed = [FACTORS[s.name].edit_xml(root, env, s) for s in build]
            if any(changed):
                env.env.reset_from_xml_string(ET.tostring(root, encoding="unicode"))
            if any(r.name == "object_size" for r in self.randomize):
                self._base_xml = ET.tostring(root, encoding="unicode")
        self.snapshot(env)

    def before_reset(self, env, seed: int) -> None:
        """Randomized ``object_size``: recompile the scene when this episode's scale differs from the compiled one."""
        r = next((r for r in self.randomize if r.name == "object_size"), None)
        if r is None or r.scale(seed) == self._scale:
            return
        root = ET.fromstring(self._base_xml)
        FACTORS["object_size"].scale_xml(root, env, r.scale(seed))
        env.env.reset_from_xml_string(ET.tostring(root, encoding="unicode"))
        env._setup_renderer()
        self._scale = r.scale(seed)
        self.snapshot(env)
    def snapshot(self, env) -> None:
        model = env.model
        self._nominal = {k: np.array(getattr(model, k)).copy() for k in _SNAPSHOT}
        self._nominal["headlight"] = np.array([model.vis.headlight.diffuse, model.vis.headlight.ambient]).copy()
        names = getattr(model, "body_names", ())
        dist = [model.body_name2id(f"distractor{i}") for i in range(N_DISTRACTORS) if f"distractor{i}" in names]
        self._dist = dist
        self._dist_pos = np.array(model.body_pos[dist]).copy() if dist else None

    def restore(self, env) -> None:
        model = env.model
        for k, v in self._nominal.items():
            if k != "headlight":
                getattr(model, k)[...] = v
        model.vis.headlight.diffuse[:] = self._nominal["headlight"][0]
        model.vis.headlight.ambient[:] = self._nominal["headlight"][1]
        if self._dist:
            model.body_pos[self._dist] = self._dist_pos

    def apply(self, env, seed: int) -> None:
        """Undo the last episode's edits, then draw and apply this episode's (conditions, then randomized)."""
        self.restore(env)
        for s in self.settings:
            if s.severity > 0:
                FACTORS[s.name].apply(env, s, s.rng(seed))
        self.drawn = {}
        severity = episode_severities(self.randomize, seed)
        for r in self.randomize:
            s = FactorSetting(r.name, severity[r.name], r.seed)
            if r.name == "object_size":
                info = FACTORS[r.name].lift(env, r.scale(seed))
            else:
                info = FACTORS[r.name].apply(env, s, s.rng(seed)) if s.severity > 0 else None
            self.drawn[r.name] = {"severity": s.severity, **(info or {})}
        for ins in self.instructions:
            ins.apply(env, seed)
