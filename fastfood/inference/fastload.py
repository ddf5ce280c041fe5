"""The two biggest avoidable costs of a cold predict: importing matplotlib and random init.

1. `import tensorflow` imports Keras 3, which imports `matplotlib.pyplot` at start-up (for
   `keras.visualization`, which fastfood never uses) when matplotlib is installed: about a
   second of CPU on a small machine. `import_tensorflow()` hides matplotlib for the duration of
   that import only (Keras catches the ImportError and disables the gallery plots); a later
   `import matplotlib` (evaluate's confusion plot) works as usual.

2. Building VGG19 draws ~143 M random numbers for weights that the checkpoint overwrites a
   moment later; on two CPU cores that Philox draw costs more than reading the checkpoint.
   `restored_variables_only()` gives every large Keras variable created inside it an
   UNINITIALISED buffer instead (`tf.raw_ops.Empty(init=False)`): no random numbers, no
   memset, and since the restore hands its freshly read tensor to the variable (eager
   AssignVariableOp adopts the buffer), those pages are never even touched. Measured on a
   2-core box, full width: half the page faults (275k -> 138k) and build + restore CPU
   ~1.5 s -> ~0.8 s. The price is a contract: a restore that asserts every model variable
   was matched (`assert_existing_objects_matched()`, as `restore_weights` and `load_run`
   do) must follow, or the model would compute with garbage.

Both are safe no-ops when their assumptions do not hold: matplotlib already imported, or a
Keras version whose variables do not carry their shape where we look (then the random init
simply runs as before). That second fallback would be silent, so it is pinned: the suite's
tests/test_predict.py fails when building a model swaps no variable, and Keras is held to
the versions where it was checked (pyproject.toml). Dropping the trick costs ~5 CPU s per
cold predict at full width (benchmarks/predict.py --compare plain-init; BENCHMARKS.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

# Smaller variables (biases, seed-generator states, optimizer counters) keep their real
# initial values: they cost nothing, and some of them are not in every checkpoint.
MIN_SWAPPED_ELEMENTS = 1 << 16


@contextmanager
def hidden_matplotlib() -> Iterator[None]:
    """While inside, `import matplotlib` raises ImportError (unless it is imported already)."""
    if "matplotlib" in sys.modules:
        yield
        return
    sys.modules["matplotlib"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get("matplotlib", 0) is None:
            del sys.modules["matplotlib"]


def import_tensorflow() -> ModuleType:
    """`import tensorflow` as the CLI does (quietly, fastfood.quiet), minus matplotlib."""
    if "tensorflow" not in sys.modules:
        from fastfood.quiet import import_tensorflow_quietly

        with hidden_matplotlib():
            import_tensorflow_quietly()
    import tensorflow as tf

    return tf


class Swapped:
    """The variables created uninitialised (so callers and tests can see the swap happened)."""

    def __init__(self) -> None:
        self.variables: list[Any] = []


@contextmanager
def restored_variables_only() -> Iterator[Swapped]:
    """Inside: large Keras variables start uninitialised; restore them all (module doc)."""
    import keras
    import tensorflow as tf

    swapped = Swapped()

    def creator(next_creator: Any, **kwargs: Any) -> Any:
        spec = _keras_shape(kwargs.get("initial_value"), keras.Variable)
        if spec is not None:
            shape, dtype = spec
            kwargs["initial_value"] = lambda: tf.raw_ops.Empty(shape=shape, dtype=dtype,
                                                               init=False)
        variable = next_creator(**kwargs)
        if spec is not None:
            swapped.variables.append(variable)
        return variable

    with tf.variable_creator_scope(creator):
        yield swapped


def _keras_shape(initial_value: Any, variable_type: type) -> tuple[tuple[int, ...], str] | None:
    """(shape, dtype) of the Keras variable whose deferred initializer this is, if large.

    Keras' TF backend passes `lambda: initializer(self._shape, dtype=self._dtype)`, closing
    over the Keras variable, whose shape is already set; anything else returns None.
    """
    if not callable(initial_value):
        return None
    for cell in getattr(initial_value, "__closure__", None) or ():
        try:
            owner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(owner, variable_type):
            shape = tuple(int(d) for d in owner.shape)
            size = 1
            for d in shape:
                size *= d
            if size >= MIN_SWAPPED_ELEMENTS:
                return shape, str(owner.dtype)
            return None
    return None
