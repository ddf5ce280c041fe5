"""Numbers every loader must agree on, in one TF-free and DALI-free place.

The tf.data ops (``preprocess.py``) and the DALI pipeline (``dali_pipeline.py``) both read
these, so a change to the augmentation reaches both loaders at once. The choice lists
(kinds, crops) live with the rest of the product's choices in ``fastfood.config``.
"""

# Random-resized ('inception') training crop: area fraction and aspect ratio (w/h) ranges,
# as torchvision/timm and DALI's defaults; after CROP_ATTEMPTS misses, a centred fallback.
AREA_RANGE = (0.08, 1.0)
ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10

# The 'square' training crop: a random square of side min(h, w) - 2 * SQUARE_MARGIN (almost
# the whole image, 10 px in from the shorter side), the crop of the plain tf.data baseline
# (benchmarks/peers.py); the from-scratch default.
SQUARE_MARGIN = 10

# ---- auto-augmentation (--augment randaugment | trivial), applied after the crop and flip --

#: The op set of RandAugment and TrivialAugment-wide, in the order DALI's suites list them,
#: each as (name, randomly negated, RandAugment magnitude range, TrivialAugment range).
#: A magnitude bin b of MAGNITUDE_BINS picks linspace(low, high, MAGNITUDE_BINS)[b], negated
#: with probability 1/2 where marked. The ranges are DALI's (``nvidia.dali.auto_aug``) and
#: torchvision's, with translations as a fraction of the image side: RandAugment's 100 px
#: of 224, TrivialAugment's 32 px of 224 (DALI's own default for that one is the whole side).
#: translate/shear/rotate fill uncovered pixels with FILL_VALUE; the enhance ops (brightness,
#: contrast, color, sharpness) take 1 + magnitude as PIL's factor; posterize keeps
#: round(magnitude) bits; solarize inverts pixels at or above the magnitude.
AUGMENT_OPS = (
    ("translate_x", True, (0.0, 100 / 224), (0.0, 32 / 224)),
    ("translate_y", True, (0.0, 100 / 224), (0.0, 32 / 224)),
    ("shear_x", True, (0.0, 0.3), (0.0, 0.99)),
    ("shear_y", True, (0.0, 0.3), (0.0, 0.99)),
    ("rotate", True, (0.0, 30.0), (0.0, 135.0)),
    ("brightness", True, (0.0, 0.9), (0.01, 0.99)),
    ("contrast", True, (0.0, 0.9), (0.01, 0.99)),
    ("color", True, (0.0, 0.9), (0.01, 0.99)),
    ("sharpness", True, (0.0, 0.9), (0.01, 0.99)),
    ("posterize", False, (8.0, 4.0), (8.0, 2.0)),
    ("solarize", False, (256.0, 0.0), (256.0, 0.0)),
    ("equalize", False, None, None),
    ("auto_contrast", False, None, None),
    ("identity", False, None, None),
)
MAGNITUDE_BINS = 31
#: RandAugment: this many ops in sequence, each at this magnitude bin (of MAGNITUDE_BINS):
#: torchvision's and DALI's defaults (timm's rand-m9-n2 counts m out of 10 instead).
RAND_AUGMENT_OPS = 2
RAND_AUGMENT_MAGNITUDE = 9
FILL_VALUE = 128

# ---- random erasing (--random-erasing P), the last training op ---------------------------

#: With probability P one rectangle is erased: its area a uniform share of the image in
#: ERASE_AREA, its aspect ratio (h/w) log-uniform in ERASE_ASPECT, each side clipped to the
#: image, placed uniformly; torchvision's ranges. It is filled with ERASE_FILL, the
#: ImageNet mean colour, i.e. zero after the model's normalisation (torchvision's value=0).
ERASE_AREA = (0.02, 1.0 / 3.0)
ERASE_ASPECT = (0.3, 3.3)
ERASE_FILL = (124, 117, 104)


def magnitudes(op_range: tuple[float, float] | None, bins: int = MAGNITUDE_BINS
               ) -> tuple[float, ...]:
    """The magnitude of each bin of an op's range (empty for ops without a magnitude)."""
    if op_range is None:
        return ()
    low, high = op_range
    if bins == 1:
        return (float(low),)
    return tuple(low + (high - low) * i / (bins - 1) for i in range(bins))
