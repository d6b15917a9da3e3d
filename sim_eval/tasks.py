"""The task registry: every sim task's instruction, step limit and embodiment spec (no simulator import).

Suites: ``robosuite`` (Lift, Stack, PickPlaceCan, Door on a Panda), ``language`` (LiftColor,
PickPlaceOne: instruction-grounded Panda tasks whose instruction names the target object, see
:mod:`sim_eval.language`) and ``mt10`` (Meta-World MT10 on a Sawyer). The envs (:mod:`sim_eval.envs`,
:mod:`sim_eval.metaworld_env`) build on this module, so checking a task name or an embodiment never loads MuJoCo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vla.types import EmbodimentSpec


@dataclass(frozen=True, kw_only=True)
class TaskInfo:
    """A task of a suite: its env name, instruction, episode limit and embodiment.

    Instruction-grounded tasks (``targets`` non-empty) write ``{target}`` in ``instruction`` (the canonical
    wording), ``templates`` (the training wordings, canonical first) and ``paraphrases`` (held out for eval)."""

    name: str
    suite: str  # "robosuite" | "metaworld"
    instruction: str
    max_steps: int
    env_name: str
    embodiment: str
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    paraphrases: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()  # the objects an instruction may name (grounded tasks only)
    templates: tuple[str, ...] = ()  # training wordings of a grounded task (``{target}`` placeholders)

    @property
    def grounded(self) -> bool:
        """Whether the instruction decides the goal (it names one of ``targets``)."""
        return bool(self.targets)


def _robosuite(name: str, instruction: str, max_steps: int, paraphrases: tuple[str, ...]) -> TaskInfo:
    return TaskInfo(name=name, suite="robosuite", instruction=instruction, max_steps=max_steps, env_name=name,
                    embodiment="robosuite_panda", paraphrases=paraphrases)


ROBOSUITE_TASKS: dict[str, TaskInfo] = {
    "Lift": _robosuite("Lift", "pick up the red cube", 200, (
        "lift the red block", "grab the red cube and raise it", "raise the small red box off the table",
        "pick the red block up")),
    "Stack": _robosuite("Stack", "stack the red cube on top of the green cube", 300, (
        "put the red block on the green block", "place the red cube onto the green one",
        "set the red box on top of the green box", "stack red on green")),
    "PickPlaceCan": _robosuite("PickPlaceCan", "put the can in the bin on the right", 400, (
        "move the coke can into the right bin", "pick up the can and drop it in the right container",
        "place the soda can in the right-hand bin", "transfer the can to the other bin")),
    "Door": _robosuite("Door", "open the door", 300, (
        "pull the door open", "turn the handle and open the door", "swing the door open",
        "unlatch and open the door")),
}

LANGUAGE_TASKS: dict[str, TaskInfo] = {
    "LiftColor": TaskInfo(
        name="LiftColor", suite="robosuite", instruction="lift the {target} cube", max_steps=200,
        env_name="LiftColor", embodiment="robosuite_panda", targets=("red", "green", "blue"),
        templates=("lift the {target} cube", "pick up the {target} cube", "grab the {target} block and raise it",
                   "raise the {target} cube off the table"),
        paraphrases=("hoist the {target} block", "take the {target} one and lift it up",
                     "could you pick the {target} box up", "get the {target} cube into the air")),
    "PickPlaceOne": TaskInfo(
        name="PickPlaceOne", suite="robosuite", instruction="put the {target} in its bin", max_steps=400,
        env_name="PickPlaceOne", embodiment="robosuite_panda", targets=("milk", "bread", "cereal", "can"),
        templates=("put the {target} in its bin", "place the {target} into its bin",
                   "move the {target} to its spot in the right bin", "pick up the {target} and drop it in its bin"),
        paraphrases=("transfer the {target} to its compartment", "sort the {target} into the other bin",
                     "could you bin the {target}", "carry the {target} over to its place in the right bin")),
}
ROBOSUITE_TASKS.update(LANGUAGE_TASKS)

_MT10 = {
    "reach-v3": ("reach the goal position", ("move the gripper to the target", "go to the goal")),
    "push-v3": ("push the puck to the goal", ("slide the puck to the target", "shove the puck onto the goal")),
    "pick-place-v3": ("pick up the puck and place it at the goal", ("move the puck to the target in the air",
                                                                     "grasp the puck and put it on the goal")),
    "door-open-v3": ("open the door", ("pull the door open", "swing the door open")),
    "drawer-open-v3": ("open the drawer", ("pull the drawer out", "slide the drawer open")),
    "drawer-close-v3": ("close the drawer", ("push the drawer shut", "slide the drawer closed")),
    "button-press-topdown-v3": ("press the button from the top", ("push the button down", "press down on the button")),
    "peg-insert-side-v3": ("insert the peg into the hole from the side", ("put the peg in the side hole",
                                                                          "slide the peg into the hole")),
    "window-open-v3": ("slide the window open", ("open the window", "push the window open sideways")),
    "window-close-v3": ("slide the window closed", ("close the window", "push the window shut sideways")),
}
# extra training wordings of MT10 (``vla collect`` draws the canonical one or these per demo; the paraphrases
# above stay held out for evaluation)
_MT10_TRAIN = {
    "reach-v3": ("move the hand to the goal position", "reach to the goal"),
    "push-v3": ("push the puck onto the goal position", "move the puck to the goal by pushing it"),
    "pick-place-v3": ("lift the puck and put it at the goal", "pick and place the puck at the goal"),
    "door-open-v3": ("open the door all the way", "pull the door handle to open the door"),
    "drawer-open-v3": ("open the drawer all the way", "pull the drawer handle out"),
    "drawer-close-v3": ("close the drawer all the way", "push the drawer closed"),
    "button-press-topdown-v3": ("press the button down from above", "push down the button from above"),
    "peg-insert-side-v3": ("insert the peg sideways into the hole", "push the peg into the side hole"),
    "window-open-v3": ("open the window by sliding it", "slide the window to open it"),
    "window-close-v3": ("close the window by sliding it", "slide the window to close it"),
}
METAWORLD_TASKS: dict[str, TaskInfo] = {
    name: TaskInfo(name=name, suite="metaworld", instruction=instr, max_steps=300, env_name=name,
                   embodiment="metaworld_sawyer", paraphrases=para, templates=(instr, *_MT10_TRAIN[name]))
    for name, (instr, para) in _MT10.items()
}

SUITES: dict[str, tuple[str, ...]] = {"robosuite": ("Lift", "Stack", "PickPlaceCan", "Door"),
                                      "language": tuple(LANGUAGE_TASKS), "mt10": tuple(METAWORLD_TASKS)}


def robosuite_panda_spec(image_size: int = 96) -> EmbodimentSpec:
    """Panda arm, OSC_POSE delta control (+gripper), agentview + wrist cameras."""
    return EmbodimentSpec(
        name="robosuite_panda",
        cameras=("agentview", "wrist"),
        state_dim=9,
        action_dim=7,
        action_space="eef_delta_pos3_rot3_gripper1",
        state_space="eef_pos3_quat4_gripper_qpos2",
        action_is_delta=(True,) * 6 + (False,),
        gripper_dims=(6,),
        control_hz=20.0,
        execute_horizon=8,
        image_size=(image_size, image_size),
        description="robosuite 1.5 Panda, OSC_POSE delta in base frame: dpos (x0.05 m), drot axis-angle "
        "(x0.5 rad), gripper -1 open / +1 close; images upright.",
    )


def metaworld_spec(image_size: int = 96) -> EmbodimentSpec:
    """Sawyer arm of Meta-World: xyz delta (+gripper) actions, hand xyz + gripper opening state."""
    return EmbodimentSpec(
        name="metaworld_sawyer",
        cameras=("agentview", "wrist"),
        state_dim=4,
        action_dim=4,
        action_space="eef_delta_pos3_gripper1",
        state_space="eef_pos3_gripper_open1",
        action_is_delta=(True, True, True, False),
        gripper_dims=(3,),
        control_hz=80.0,
        execute_horizon=8,
        image_size=(image_size, image_size),
        description="Meta-World v3 Sawyer: dpos in [-1, 1] (x1/100 m), gripper -1 open / +1 close; images upright.",
    )


def task_info(task: str) -> TaskInfo:
    """The task's registry entry; a one-line ValueError naming the choices for an unknown name."""
    if task in ROBOSUITE_TASKS:
        return ROBOSUITE_TASKS[task]
    if task in METAWORLD_TASKS:
        return METAWORLD_TASKS[task]
    raise ValueError(f"unknown task {task!r}; robosuite: {sorted(ROBOSUITE_TASKS)}, "
                     "metaworld: MT10 names (e.g. reach-v3)")


def task_spec(task: str, image_size: int = 96) -> EmbodimentSpec:
    """The embodiment spec the task's env produces observations for."""
    return robosuite_panda_spec(image_size) if task_info(task).suite == "robosuite" else metaworld_spec(image_size)


def suite_tasks(suite: str) -> tuple[str, ...]:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    return SUITES[suite]
