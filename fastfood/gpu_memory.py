"""GPU memory growth, asked for before TensorFlow touches a GPU, in every entry point.

By default TensorFlow reserves almost all of each GPU's memory the first time it uses the
GPU. DALI allocates its own decoder buffers on the same GPU, and when TensorFlow got there
first DALI fails inside `MakeIteratorInternal`, which aborts the whole process with no
report and no checkpoint. `tf.config.experimental.set_memory_growth` only works before
TensorFlow initialises its devices (any op does that: it raises RuntimeError after,
tensorflow/python/eager/context.py `set_memory_growth`), so a check that runs a GPU op
first silently loses it. Two layers, then:

- `request()`: TF_FORCE_GPU_ALLOW_GROWTH=true in the environment before TensorFlow is
  imported. TensorFlow's GPU allocator reads it when it creates each GPU device and it
  overrides the session setting (GPUBFCAllocator::GetAllowGrowthValue); a value the user
  set is kept.
- `allow_growth()`: the Python setting on every GPU as well, right after the import;
  it says why when it could not be set.

No TensorFlow import at module level.
"""

from __future__ import annotations

import os
import sys

ENV = "TF_FORCE_GPU_ALLOW_GROWTH"

#: What the first `request()` saw: whether TensorFlow had been imported already (then
#: the variable may come too late for a GPU that is already initialised).
requested_after_import: bool | None = None


def request() -> None:
    """Put TF_FORCE_GPU_ALLOW_GROWTH=true in the environment (unless the user set it)."""
    global requested_after_import
    if requested_after_import is None:
        requested_after_import = "tensorflow" in sys.modules
    os.environ.setdefault(ENV, "true")


def allow_growth() -> str:
    """Memory growth on every GPU TensorFlow lists: '' when it is on (or there is no GPU),
    else one line saying why not. Imports TensorFlow."""
    request()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return ""
    env = os.environ.get(ENV, "").strip().lower()
    if env == "false":
        return f"{ENV}=false in the environment turns it off"
    failed = []
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError) as err:
            failed.append(f"{gpu.name}: {str(err).splitlines()[0] if str(err) else err}")
    # The variable, set before the import, reaches the allocator even when the Python
    # setting comes too late; only "true" counts (any other value is ignored with a warning).
    if failed and not (env == "true" and not requested_after_import):
        return ("TensorFlow had initialised the GPUs before memory growth was asked for ("
                + "; ".join(failed) + ")")
    return ""


def describe(problem: str) -> str:
    """One line for a report: what is in effect."""
    if problem:
        return f"memory growth is off: {problem}"
    when = "after" if requested_after_import else "before"
    return f"memory growth on ({ENV}={os.environ.get(ENV, '')}, set {when} TensorFlow's import)"
