"""fastfood: fast VGG19 transfer learning for image classification.

Importing the package is cheap on purpose: TensorFlow and DALI are imported only by the
modules that need them, so `fastfood --help` answers instantly.
"""

__version__ = "0.1.0"
