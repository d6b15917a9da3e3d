"""Triton beside the other LLVM users: imported through data_pipelines.rlds.tf_loader (TensorFlow) or after
sim_eval.gl.gl_guard (Mesa llvmpipe rendering), a later ``import triton`` (torch._dynamo does it) must not
crash the process. Loaded the other way round it segfaults."""

import os
import subprocess
import sys

AFTER_TF = "import triton._C.libtriton; import torch._dynamo; print('alive')"


def test_triton_after_tensorflow_through_the_loader():
    first = ("from data_pipelines.rlds.tf_loader import tensorflow, tensorflow_datasets; tf = tensorflow(); "
             "tfds = tensorflow_datasets(); tfds.features.Image()")
    res = subprocess.run([sys.executable, "-c", f"{first}; {AFTER_TF}"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("alive"), res.stderr[-2000:]


RENDER = """
import mujoco
from sim_eval.gl import gl_guard
gl_guard()
m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
d = mujoco.MjData(m)
r = mujoco.Renderer(m, 32, 32)
mujoco.mj_forward(m, d)
r.update_scene(d)
assert r.render().mean() > 0
"""


def test_triton_after_mesa_rendering_behind_the_gl_guard():
    res = subprocess.run([sys.executable, "-c", f"{RENDER}\n{AFTER_TF}"], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert res.returncode == 0 and res.stdout.strip().endswith("alive"), res.stderr[-2000:]
