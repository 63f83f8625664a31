"""Shared deep-hashing machinery: backbones and the one trainer every deep method uses.

- :mod:`deep.backbones`: ``create_backbone(name, ...)`` (``compact-cnn``, ``alexnet``, ``resnet18``,
  ``resnet50``); ImageNet weights only from the local torch hub cache or a ``weights`` path.
- :mod:`deep.trainer`: the training loop (batches, augmentation, optimiser, validation-MAP model
  selection, device, seeds, progress bar) that :class:`methods.deep_method.DeepHashMethod` runs.
- :mod:`deep.features`: cached feature vectors of photo datasets (AlexNet fc7, or pixels) for the
  shallow methods.

``deep`` sits below :mod:`methods`: it imports :mod:`datasets` and :mod:`common`, never
:mod:`methods` or :mod:`protocols`.
"""
