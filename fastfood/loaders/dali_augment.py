"""RandAugment, TrivialAugment-wide and random erasing with DALI's own operators. No TensorFlow.

The op implementations are DALI's (``nvidia.dali.auto_aug.augmentations``), which run on
the GPU next to the decode and on the CPU backend alike; the suites are rebuilt here from
``spec.AUGMENT_OPS`` so the magnitude ranges are the ones ``autoaugment.py`` (tf.data)
uses too. DALI's auto-augment selects the op per sample with ``if``/``else`` inside the
graph, so the pipeline that calls these must be made with
``@pipeline_def(enable_conditionals=True)``.
"""

from __future__ import annotations

import math

import nvidia.dali.math as dmath
from nvidia.dali import fn, types

from fastfood.loaders.spec import (AUGMENT_OPS, ERASE_AREA, ERASE_ASPECT, ERASE_FILL,
                                   FILL_VALUE, MAGNITUDE_BINS, RAND_AUGMENT_MAGNITUDE,
                                   RAND_AUGMENT_OPS)


def _own_ops() -> dict:
    """DALI's sharpness and equalize, calling ``fn.filter`` and ``fn.equalize`` rather
    than the deprecated ``fn.experimental`` aliases DALI's suite still uses (which warn
    on every pipeline build); the same operators, so the same pixels."""
    from nvidia.dali.auto_aug import augmentations as a
    from nvidia.dali.auto_aug.core import augmentation

    @augmentation(mag_range=(0, 0.9), randomly_negate=True, mag_to_param=a.sharpness_kernel,
                  param_device="auto")
    def sharpness(data, kernel):
        return fn.filter(data, kernel)

    @augmentation
    def equalize(data, _):
        return fn.equalize(data)

    return {"sharpness": sharpness, "equalize": equalize}


def suite(policy: str) -> list:
    """DALI's augmentations in ``AUGMENT_OPS`` order with ``policy``'s magnitude ranges."""
    from nvidia.dali.auto_aug import augmentations as a

    column = 2 if policy == "randaugment" else 3
    own = _own_ops()
    out = []
    for entry in AUGMENT_OPS:
        name, signed = entry[0], entry[1]
        op = own.get(name) or getattr(a, name)
        if entry[column] is not None:
            op = op.augmentation(mag_range=entry[column], randomly_negate=signed)
        out.append(op)
    return out


def auto_augment(images, policy: str, image_size: int):
    """``images`` (uint8 HWC, S x S) under 'randaugment', 'trivial' or 'basic' (as they are)."""
    if policy == "basic":
        return images
    from nvidia.dali.auto_aug import rand_augment, trivial_augment

    extra = {"shape": (image_size, image_size), "fill_value": FILL_VALUE}
    if policy == "randaugment":
        return rand_augment.apply_rand_augment(
            suite(policy), images, RAND_AUGMENT_OPS, RAND_AUGMENT_MAGNITUDE,
            num_magnitude_bins=MAGNITUDE_BINS, **extra)
    if policy == "trivial":
        return trivial_augment.apply_trivial_augment(
            suite(policy), images, num_magnitude_bins=MAGNITUDE_BINS, **extra)
    raise ValueError(f"augment must be basic, randaugment or trivial, got {policy!r}")


def random_erase(images, probability: float, image_size: int):
    """With ``probability``, one rectangle per image filled with ERASE_FILL (``fn.erase``),
    drawn as ``autoaugment.erase_box`` draws it."""
    if probability <= 0:
        return images
    s = float(image_size)
    area = fn.random.uniform(range=list(ERASE_AREA)) * (s * s)
    ratio = dmath.exp(fn.random.uniform(range=[math.log(ERASE_ASPECT[0]),
                                               math.log(ERASE_ASPECT[1])]))
    h = dmath.min(dmath.floor(dmath.sqrt(area * ratio) + 0.5), s)
    w = dmath.min(dmath.floor(dmath.sqrt(area / ratio) + 0.5), s)
    y0 = dmath.min(dmath.floor(fn.random.uniform(range=[0.0, 1.0]) * (s - h + 1.0)), s - h)
    x0 = dmath.min(dmath.floor(fn.random.uniform(range=[0.0, 1.0]) * (s - w + 1.0)), s - w)
    on = fn.cast(fn.random.coin_flip(probability=float(probability)), dtype=types.FLOAT)
    return fn.erase(images, anchor=fn.stack(y0, x0), shape=fn.stack(h * on, w * on),
                    axis_names="HW", fill_value=list(ERASE_FILL))
