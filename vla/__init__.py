"""vla: the core of the stack — shared vocabulary, the policy model, checkpoints, CLI."""

import os as _os

# transformers otherwise imports TensorFlow (installed for RLDS) on first use: slow and noisy.
_os.environ.setdefault("USE_TF", "0")
_os.environ.setdefault("USE_FLAX", "0")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
