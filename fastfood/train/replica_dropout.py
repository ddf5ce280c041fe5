"""Each replica draws its own dropout masks.

Keras 3's Dropout draws its mask from the layer's `SeedGenerator`, whose state is a
variable: under a tf.distribute strategy it is mirrored, every replica reads the same
state, and so every replica (and every worker of a cluster) drops the SAME units of its
part of the batch, as if the global batch were a copy of one replica's. `install` folds
the replica's id in the sync group (TensorFlow numbers them across workers, so this
covers the workers too) into the seed each Dropout layer draws, with
`tf.random.experimental.stateless_fold_in`: independent streams per replica, while the
state itself, and so the checkpoint, is Keras' own. One replica is left as it is.

Interface used: a Dropout layer's `seed_generator` attribute and its `next()` method, as
keras/src/layers/regularization/dropout.py and keras/src/random/seed_generator.py define
them (pinned by tests/test_replica_dropout.py).
"""

from __future__ import annotations

from typing import Any


def install(model: Any, replicas: int) -> int:
    """Fold the replica id into every Dropout layer's seed when `replicas` > 1; how many
    layers draw per replica now."""
    import keras

    if replicas <= 1:
        return 0
    count = 0
    for layer in model.layers:
        gen = getattr(layer, "seed_generator", None)
        if not isinstance(layer, keras.layers.Dropout) or gen is None:
            continue
        if not getattr(gen, "_fastfood_per_replica", False):
            gen.next = _per_replica(gen.next)
            gen._fastfood_per_replica = True
        count += 1
    return count


def _per_replica(keras_next: Any) -> Any:
    def next_seed(ordered: bool = True) -> Any:
        import tensorflow as tf

        seed = keras_next(ordered)
        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # cross-replica context: no replica to tell apart
            return seed
        rid = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        mixed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), rid)
        return tf.cast(mixed, seed.dtype)

    return next_seed
