"""Random initialisation for VGG19 trained from scratch (weights=None only).

With batch norm (`bn_kernel_initializer`, the default for random init) the scale of every
convolution is reset by the BN after it, so its kernels are plain He-normal (as torchvision's
vgg19_bn), fc6/fc7 are He-normal too (their input, pool5 of BN+ReLU, is O(1)), and fc8 starts
tiny as below.

The plain net (`kernel_initializer`, norm='none') has no batch norm, so the initial weights
alone decide whether it trains. Two things went wrong with plain initialisers (measured on the built-in sample, width 0.125, 64 px):

- Scale. Keras' default (Glorot) halves the signal's second moment at every ReLU layer, so
  it shrank ~1000x by fc8. He-normal keeps it constant, but the model sees RGB minus means
  on the 0-255 scale (std ~60, fixed by the slim convention that checkpoints and predict
  depend on). Dividing it out in conv1_1 alone gives that kernel ~60x smaller weights and
  ~60x larger gradients than the rest: its relative update is ~2000x the other layers' (it
  thrashes; lr 0.05 diverges). So every body layer (conv1_1 .. fc7) divides out an equal
  share, INPUT_STD ** (1/18): relative updates stay within ~3x of each other and fc7's
  features come out O(1).
- Depth. A random 18-layer ReLU stack maps all inputs to nearly the same direction (their
  correlation tends to 1 with depth) and its gradients are noisy, so even balanced He init
  learned slowly (val top-1 0.48 after 300 steps at lr 0.01; higher lr collapsed). A
  3-layer CNN learns the sample in 90 steps. So, as in DiracNets (Zagoruyko & Komodakis,
  2017), every layer whose input comes out of a ReLU starts as (nearly) the identity: the
  kernel's centre tap maps input channel i to output channel i, with a little He noise to
  break symmetry. Inputs there are >= 0, so identity + ReLU passes them through unchanged
  and the net starts as conv1_1 -> pools -> fc6 -> its shallow equivalent, while every
  layer still trains. Output channels beyond the inputs (where a block widens) are plain
  He-normal.
- fc8 starts tiny (std 0.01 / sqrt(fan_in)): initial logits are ~0.01-0.1, so the loss
  starts at ln(num_classes) with no confident wrong guesses, yet (unlike an all-zero fc8)
  every layer gets a gradient from the first step.

Biases are zero (the Keras default). Pretrained builds keep Keras' defaults: their arrays
are overwritten on load, and a fresh fc8 for another class count is Glorot as before.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from fastfood.model.layout import LAYER_NAMES

#: The std of RGB 0-255 minus the ImageNet means, roughly (57.8 on the built-in sample).
INPUT_STD = 60.0
HEAD_LAYER = "fc8"
#: fc8's variance relative to fan_in: std 0.01 / sqrt(fan_in).
HEAD_SCALE = 1e-4
#: Layers the input's scale is divided out over: conv1_1 .. fc7.
BODY_LAYERS: tuple[str, ...] = LAYER_NAMES[:-1]
#: Each body layer's share: its kernel is multiplied by this.
LAYER_GAIN = INPUT_STD ** (-1.0 / len(BODY_LAYERS))
#: He noise added to the identity part, relative to a He-normal kernel's std.
IDENTITY_NOISE = 0.25
#: Layers drawn fully at random: conv1_1 sees the raw (signed) input, fc6 reshapes space.
RANDOM_LAYERS = ("conv1_1", "fc6")


@keras.saving.register_keras_serializable(package="fastfood")
class NearIdentity(keras.initializers.Initializer):
    """gain * (identity on the centre tap + noise * He-normal); He-normal for extra outputs.

    Works for conv kernels [kh, kw, in, out] and dense kernels [in, out].
    """

    def __init__(self, gain: float = 1.0, noise: float = IDENTITY_NOISE, seed: int | None = None):
        self.gain = float(gain)
        self.noise = float(noise)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        shape = tuple(int(s) for s in shape)
        he = keras.initializers.HeNormal(seed=self.seed)(shape, dtype="float32")
        he = keras.ops.convert_to_numpy(he)
        cin, cout = shape[-2], shape[-1]
        n = min(cin, cout)
        kernel = he.copy()
        kernel[..., :n] *= self.noise
        centre = tuple(s // 2 for s in shape[:-2])
        kernel[centre + (np.arange(n), np.arange(n))] += 1.0
        return keras.ops.cast(kernel * self.gain, dtype or "float32")

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "noise": self.noise, "seed": self.seed}


def kernel_initializer(layer: str) -> Any:
    """The kernel initializer of VGG19 layer `layer` ('conv1_1' .. 'fc8') for random init."""
    if layer == HEAD_LAYER:
        return keras.initializers.VarianceScaling(
            scale=HEAD_SCALE, mode="fan_in", distribution="truncated_normal"
        )
    if layer in RANDOM_LAYERS:
        return keras.initializers.VarianceScaling(
            scale=2.0 * LAYER_GAIN**2, mode="fan_in", distribution="truncated_normal"
        )
    return NearIdentity(gain=LAYER_GAIN)


def bn_kernel_initializer(layer: str) -> Any:
    """The kernel initializer of layer `layer` in the batch-norm variant, for random init."""
    if layer == HEAD_LAYER:
        return kernel_initializer(HEAD_LAYER)
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="truncated_normal"
    )
