"""TensorFlow beside torch's Triton: imported through data_pipelines.rlds.tf_loader, a later ``import triton``
(torch._dynamo does it) must not crash the process. Loaded the other way round it segfaults."""

import subprocess
import sys

import pytest

AFTER_TF = "import triton._C.libtriton; import torch._dynamo; print('alive')"


@pytest.mark.parametrize("first", ["from data_pipelines.rlds.tf_loader import tensorflow; tensorflow()",
                                   "from data_pipelines.rlds.tf_loader import tensorflow_datasets; "
                                   "tensorflow_datasets()"])
def test_triton_after_tensorflow_through_the_loader(first):
    res = subprocess.run([sys.executable, "-c", f"{first}; {AFTER_TF}"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("alive"), res.stderr[-2000:]
