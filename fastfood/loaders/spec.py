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
