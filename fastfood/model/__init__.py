"""VGG19 with weight import from TF-slim and Keras, preprocessing inside the model.

    model = fastfood.model.vgg19(101, weights="imagenet")
    fastfood.model.convention_of(model)   # 'keras': BGR minus Caffe means, inside the model
    model = fastfood.model.vgg19(10, weights=None)   # norm='auto': batch norm for random init
    loss += fastfood.model.l2_loss(model, 5e-4)

TensorFlow/Keras are imported when this package is, so import it only where a model is needed.
"""

from fastfood.model.factory import build
from fastfood.model.fc6 import FC6
from fastfood.model.preprocessing import CONVENTIONS, Preprocess
from fastfood.model.regularization import head_variables, l2_loss
from fastfood.model.vgg import convention_of, norm_of, vgg19

__all__ = [
    "CONVENTIONS",
    "FC6",
    "Preprocess",
    "build",
    "convention_of",
    "head_variables",
    "l2_loss",
    "norm_of",
    "vgg19",
]
