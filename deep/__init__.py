"""Shared deep-hashing machinery: backbones and the one trainer every deep method uses.

- :mod:`deep.backbones`: ``create_backbone(name, ...)`` (``compact-cnn``, ``alexnet``, ``resnet18``,
  ``resnet50``); ImageNet weights only from the local torch hub cache or a ``weights`` path.
- :mod:`deep.method`: ``DeepHashMethod``, the base class; a method adds ``build_head`` and ``loss``.
- :mod:`deep.trainer`: the training loop (batches, augmentation, optimiser, validation-MAP model
  selection, device, seeds, progress bar) that ``DeepHashMethod.fit`` runs, with a model cache.
"""
