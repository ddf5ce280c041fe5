"""The training step and the evaluation step: pure computation that returns logs.

Nothing here prints, saves or reads the clock. Each step runs on every replica through
`strategy.run`; per-replica values are arranged so that summing them across replicas gives
the global value (the cross-entropy is averaged over the GLOBAL batch, the L2 term is split
evenly between replicas), which makes N replicas compute the same update as one device
with the same global batch.

Under mixed_float16 the optimizer is a keras LossScaleOptimizer: the loss is multiplied by
the dynamic scale before differentiation and `apply` unscales the gradients, skipping the
update (and halving the scale) when they overflow. bfloat16 has float32's range and needs
no scaling.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

LossFn = Callable[[Any], Any]  # model -> scalar L2 penalty (already times weight decay)

SUM_KEYS = ("loss", "xent", "l2", "top1")


def _default_l2(weight_decay: float) -> LossFn:
    from fastfood.model import l2_loss

    return lambda model: l2_loss(model, weight_decay)


def make_optimizer(learning_rate: Any, momentum: float, *, loss_scale: bool,
                   head_variables: Any = (), head_lr_mult: float = 1.0) -> Any:
    """SGD with momentum (VGG's original optimizer), wrapped for dynamic loss scaling under fp16.

    Keras' SGD update, computed by one fused kernel per variable (`fastfood.train.optimizer`).

    `head_variables` (fc8's, from `fastfood.model.head_variables`) learn at
    `head_lr_mult` times the rate: a fresh head on a pretrained body can move faster than
    the body. Create it inside the strategy's scope and build it on all trainable variables.
    """
    import keras

    from fastfood.train.optimizer import FusedSGD, ScaledSGD

    if head_lr_mult != 1.0 and head_variables:
        opt = ScaledSGD(learning_rate=learning_rate, momentum=momentum,
                        scaled_variables=head_variables, lr_mult=head_lr_mult)
    else:
        opt = FusedSGD(learning_rate=learning_rate, momentum=momentum)
    return keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt


def cross_entropy(labels: Any, logits: Any, label_smoothing: float = 0.0) -> Any:
    """Per-example softmax cross-entropy in float32, against labels smoothed by
    `label_smoothing` (1 - s on the true class, s spread evenly over all classes)."""
    import tensorflow as tf

    logits = tf.cast(logits, tf.float32)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    if not label_smoothing:
        return nll
    uniform = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1)
    return (1.0 - label_smoothing) * nll + label_smoothing * uniform


def make_train_step(model: Any, optimizer: Any, strategy: Any, *, global_batch: int,
                    weight_decay: float, variables: list | None = None,
                    jit_compile: bool = False, l2_fn: LossFn | None = None,
                    label_smoothing: float = 0.0,
                    class_weights: Sequence[float] | None = None,
                    ema: Any = None) -> Callable:
    """A tf.function `train_step((images, labels)) -> dict of scalar tensors`, for one
    global batch (a distributed one under a strategy: an element of its iterator).

    'xent' is the cross-entropy against labels smoothed by `label_smoothing`; with
    `class_weights` (one per class, `fastfood.train.class_weights`) each example's term is
    multiplied by its class's weight before the mean over the global batch, as Keras'
    `fit(class_weight=)` does, so the weighting is per example and the same on any number
    of replicas.

    `variables` are the ones trained (fc8 only while the backbone is frozen; all of the
    model's trainable variables by default). The optimizer must already be built on all
    of the model's trainable variables so either subset can be applied. What XLA compiles
    is `xla_scope`'s answer. With several replicas, synchronised batch norm's moments go
    through one all-reduce per layer (`fastfood.train.sync_bn`), and each replica draws
    its own dropout masks (`fastfood.train.replica_dropout`). With `ema`
    (`fastfood.train.ema.Ema`) the average of the weights takes a step after each update.
    """
    import tensorflow as tf

    from fastfood.train import replica_dropout, sync_bn

    l2_fn = l2_fn or _default_l2(weight_decay)
    train_vars = list(variables if variables is not None else model.trainable_variables)
    replicas = int(strategy.num_replicas_in_sync)
    scaled = hasattr(optimizer, "scale_loss") and hasattr(optimizer, "dynamic_scale")
    scope = xla_scope(model, strategy, jit_compile)
    weights = None if class_weights is None else tf.constant(class_weights, tf.float32)
    if replicas > 1:
        sync_bn.install(model)
        replica_dropout.install(model, replicas)

    def forward_backward(images: Any, labels: Any) -> tuple[list, dict]:
        labels = tf.cast(labels, tf.int32)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            per_example = cross_entropy(labels, logits, label_smoothing)
            if weights is not None:
                per_example = per_example * tf.gather(weights, labels)
            xent = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            l2 = tf.cast(l2_fn(model), tf.float32) / replicas
            loss = xent + l2
            target = optimizer.scale_loss(loss) if scaled else loss
        grads = tape.gradient(target, train_vars)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                          tf.float32)
        logs = {"loss": loss, "xent": xent, "l2": l2,
                "top1": tf.reduce_sum(correct) / global_batch}
        return grads, logs

    def apply(grads: list) -> dict:
        extra = {"lr": tf.identity(tf.cast(optimizer.learning_rate, tf.float32))}
        if scaled:
            extra["loss_scale"] = tf.identity(optimizer.dynamic_scale)
        optimizer.apply(grads, train_vars)
        return extra

    if replicas == 1:
        def replica_step(images: Any, labels: Any) -> dict:
            grads, logs = forward_backward(images, labels)
            return {**logs, **apply(grads)}

        replica_step = tf.function(replica_step, jit_compile=jit_compile)
    else:
        compiled = tf.function(forward_backward, jit_compile=True) \
            if scope == SCOPE_FORWARD_BACKWARD else forward_backward

        def replica_step(images: Any, labels: Any) -> dict:
            grads, logs = compiled(images, labels)
            if scaled:
                grads = agree_on_overflow(grads)
            return {**logs, **apply(grads)}

    @tf.function
    def train_step(batch: Any) -> dict:
        images, labels = batch
        logs = strategy.run(replica_step, args=(images, labels))
        if ema is not None:
            ema.update()
        return reduce_logs(strategy, logs)

    return train_step


SCOPE_OFF = "off"
SCOPE_STEP = "the whole step"
SCOPE_FORWARD_BACKWARD = "forward and backward (the gradient all-reduce and update outside)"
SCOPE_SYNC_BN = ("off: synchronised batch norm all-reduces inside the forward pass, which "
                 "XLA can hold only when every replica is a GPU")


def xla_scope(model: Any, strategy: Any, jit_compile: bool) -> str:
    """What XLA compiles of the training step; SCOPE_OFF or SCOPE_SYNC_BN when nothing.

    One replica: the whole step, update included. Several: forward and backward, in a
    tf.function nested in `strategy.run`; the gradient all-reduce and the update run
    outside it. A synchronised batch-norm layer all-reduces inside the forward pass, and
    TensorFlow lets such a collective into a nested (XLA) function only where it can skip
    `merge_call`: an XLA context with every replica on a GPU (`_use_merge_call` of
    MirroredStrategy and of MultiWorkerMirroredStrategy). Elsewhere (CPUs, logical CPUs)
    forward and backward run uncompiled.
    """
    if not jit_compile:
        return SCOPE_OFF
    if int(strategy.num_replicas_in_sync) == 1:
        return SCOPE_STEP
    if has_sync_batch_norm(model) and not all_gpus(strategy):
        return SCOPE_SYNC_BN
    return SCOPE_FORWARD_BACKWARD


def all_gpus(strategy: Any) -> bool:
    """Whether every replica device of this process is a GPU."""
    from fastfood.train.distribute import gpu_device

    return all(gpu_device(d) for d in strategy.extended.worker_devices)


def is_compiled(scope: str) -> bool:
    """Whether XLA compiles anything of a step with this `xla_scope`."""
    return scope not in (SCOPE_OFF, SCOPE_SYNC_BN)


def has_sync_batch_norm(model: Any) -> bool:
    """Whether any layer of `model` all-reduces across replicas in its forward pass."""
    return any(getattr(layer, "synchronized", False) for layer in model.layers)


def agree_on_overflow(grads: list) -> list:
    """Make every replica see an overflow that any replica saw.

    keras' LossScaleOptimizer decides to skip a step from replica 0's gradients alone,
    before they are all-reduced; an overflow on another replica would then be summed into
    every replica's update. One scalar all-reduce tells all replicas, and a NaN put into
    the smallest gradient makes each of them skip the step (and halve the scale).
    """
    import tensorflow as tf

    local_bad = tf.cast(tf.logical_not(tf.reduce_all(
        [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])), tf.float32)
    any_bad = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, local_bad)
    smallest = min((i for i, g in enumerate(grads) if g is not None),
                   key=lambda i: grads[i].shape.num_elements() or 0)
    grads = list(grads)
    grads[smallest] = grads[smallest] + tf.cast(
        tf.where(any_bad > 0, float("nan"), 0.0), grads[smallest].dtype)
    return grads


def reduce_logs(strategy: Any, logs: dict) -> dict:
    """Sum the additive logs across replicas in ONE all-reduce; take the rest from a replica.

    The additive values (loss parts, counts, sums) are stacked into one vector, so a step
    costs one collective for its logs however many there are; the others (lr, loss scale)
    are the same on every replica and are read from the first local one.
    """
    import tensorflow as tf

    summed = [k for k in logs if k in SUM_KEYS or k.endswith("_sum")]
    same = [k for k in logs if k not in summed]
    out = {}
    if summed:
        packed = strategy.run(
            lambda *values: tf.stack([tf.cast(v, tf.float32) for v in values]),
            args=tuple(logs[k] for k in summed))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, packed, axis=None)
        out.update({k: total[i] for i, k in enumerate(summed)})
    for key in same:
        out[key] = strategy.experimental_local_results(logs[key])[0]
    return out


def make_eval_step(model: Any, strategy: Any, *, num_classes: int) -> Callable:
    """A tf.function `eval_step(batch) -> {loss_sum, top1_sum, top5_sum, count}`.

    Sums, not means, so batches of any size (the last partial one, an empty one on an
    idle replica) add up to exact totals over the split.
    """
    import tensorflow as tf

    k = min(5, num_classes)

    def replica_eval(images: Any, labels: Any) -> dict:
        labels = tf.cast(labels, tf.int32)
        # Padding samples (label -1, fixed-size DALI batches) are computed and left out.
        valid = tf.cast(labels >= 0, tf.float32)
        labels = tf.maximum(labels, 0)
        logits = tf.cast(model(images, training=False), tf.float32)
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        top1 = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                       tf.float32)
        top5 = tf.cast(tf.nn.in_top_k(labels, logits, k), tf.float32)
        return {
            "loss_sum": tf.reduce_sum(per_example * valid),
            "top1_sum": tf.reduce_sum(top1 * valid),
            "top5_sum": tf.reduce_sum(top5 * valid),
            "count_sum": tf.reduce_sum(valid),
        }

    @tf.function(reduce_retracing=True)
    def eval_step(batch: Any) -> dict:
        images, labels = batch
        return reduce_logs(strategy, strategy.run(replica_eval, args=(images, labels)))

    return eval_step


def evaluate(eval_step: Callable, batches: Any, steps: int | None = None) -> dict[str, float]:
    """Run eval_step over every batch (or `steps` batches of an endless iterator); totals
    accumulate on device, one fetch at the end."""
    import itertools

    totals: dict[str, Any] = {}
    for batch in (batches if steps is None else itertools.islice(batches, steps)):
        for key, value in eval_step(batch).items():
            totals[key] = value if key not in totals else totals[key] + value
    n = float(totals["count_sum"]) if totals else 0.0
    if n == 0:
        return {"loss": float("nan"), "top1": float("nan"), "top5": float("nan"), "count": 0}
    return {
        "loss": float(totals["loss_sum"]) / n,
        "top1": float(totals["top1_sum"]) / n,
        "top5": float(totals["top5_sum"]) / n,
        "count": int(n),
    }
