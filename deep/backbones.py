"""Backbone registry: the feature extractor a deep method puts its hash head on.

``create_backbone(name, in_channels, image_size, pretrained=None, weights=None)`` returns an
``nn.Module`` mapping images ``(n, C, H, W)`` to features ``(n, out_features)``; it has the
attributes ``out_features`` and ``pretrained`` (whether ImageNet weights were loaded).

- ``compact-cnn``: a small CNN trained from scratch, for 8x8 and 28x28 grayscale images.
- ``alexnet`` (HashNet's and DHN's backbone, features = fc7, 4096), ``resnet18`` (512),
  ``resnet50`` (2048): torchvision models. Grayscale images are repeated to 3 channels, resized
  to 224x224 and normalised with the ImageNet statistics inside the module.

ImageNet weights come from the torch hub cache (``$TORCH_HOME/hub/checkpoints/<file>``, where
torchvision's weights API keeps them) or from ``weights=PATH`` (a state dict). The project never
downloads them and never presents a random initialisation as pretrained: when they are missing,
:class:`BackboneWeightsError` says where to put them. ``pretrained=False`` asks for a random
initialisation explicitly (tests, or training from scratch).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from common.registry import Registry, UnknownNameError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneWeightsError(RuntimeError):
    """Pretrained weights asked for but not available locally; the message says what to do."""


class UnknownBackboneError(UnknownNameError):
    pass


_BACKBONES = Registry("backbone", error=UnknownBackboneError)
register_backbone = _BACKBONES.register
list_backbones = _BACKBONES.names


def create_backbone(name: str, in_channels: int = 1, image_size: int = 28, pretrained: bool | None = None,
                    weights: str | os.PathLike | None = None) -> nn.Module:
    """Build backbone ``name``. ``pretrained=None`` means: ImageNet weights for the torchvision
    models, none for ``compact-cnn``."""
    return _BACKBONES.get(name)(in_channels=in_channels, image_size=image_size, pretrained=pretrained, weights=weights)


def _load_state(module: nn.Module, path: Path, name: str):
    if not Path(path).is_file():
        raise BackboneWeightsError(f"weights file {path} for backbone {name!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    module.load_state_dict(state)


# -- compact CNN ----------------------------------------------------------------------------------
class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` with a faster CPU path where no gradient is taken (encoding, validation):
    the maximum of the four strided views, which is the same value exactly (a maximum rounds
    nothing). torch's CPU max-pooling kernel was the compact CNN's slowest layer on one thread, and
    validation encodes the whole training part every epoch (45 % of a fashion-mosaic epoch): measured
    on 8,192 images, one thread, the network encoded a 56x56 mosaic in 527-533 us instead of 793-805
    (28x28 Fashion-MNIST images: no change measured). Training keeps torch's kernel: its backward
    routes each window's gradient to the first maximum (the four-way maximum's would split ties),
    and neither a custom backward nor torch's over indices computed here was faster."""

    def __init__(self):
        super().__init__(2)

    def forward(self, x):
        if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd last row or column is dropped, as there
        return torch.maximum(torch.maximum(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2]),
                             torch.maximum(x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]))


class CompactCNN(nn.Module):
    """Three 3x3 conv blocks (16, 32, 64 channels, batch norm, ReLU; max-pooling after the first
    two while the map is larger than 4x4), a 2x2 adaptive average pool and a 256-unit fully
    connected feature layer (the "fc7" a hash head sits on). ~0.1 M parameters and ~2 M
    multiply-adds for a 28x28 image (measured: 70,000 images encode in ~10 s on 2 CPU cores;
    doubling the widths cost 3x the time)."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, out_features: int = 256,
                 widths: tuple = (16, 32, 64)):
        super().__init__()
        layers, channels, size = [], in_channels, image_size
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            if size > 4 and i < len(widths) - 1:
                layers.append(MaxPool2x2())
                size //= 2
            channels = width
        self.conv = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Sequential(nn.Linear(channels * 4, out_features), nn.ReLU(inplace=True))
        self.out_features = out_features
        self.pretrained = False

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


@register_backbone("compact-cnn")
def compact_cnn(in_channels=1, image_size=28, pretrained=None, weights=None):
    if pretrained:
        raise BackboneWeightsError("compact-cnn is trained from scratch; it has no ImageNet weights "
                                   "(pass weights=PATH to start from a saved state dict)")
    model = CompactCNN(in_channels, image_size)
    if weights is not None:
        _load_state(model, Path(weights), "compact-cnn")
    return model


# -- torchvision models ---------------------------------------------------------------------------
class ImageNetAdapter(nn.Module):
    """Repeat grayscale to RGB, resize to 224x224 and normalise as the ImageNet models expect."""

    def __init__(self, in_channels: int, size: int = 224):
        super().__init__()
        self.in_channels, self.size = in_channels, size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std


class TorchvisionFeatures(nn.Module):
    def __init__(self, adapter: nn.Module, body: nn.Module, out_features: int, pretrained: bool):
        super().__init__()
        self.adapter, self.body = adapter, body
        self.out_features, self.pretrained = out_features, pretrained

    def forward(self, x):
        return torch.flatten(self.body(self.adapter(x)), 1)


def local_imagenet_weights(arch: str) -> Path:
    """Where torchvision's weights API keeps ``arch``'s ImageNet weights (IMAGENET1K_V1)."""
    from torchvision.models import get_model_weights

    url = get_model_weights(arch).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _torchvision(arch: str, in_channels: int, pretrained, weights):
    import torchvision

    if in_channels not in (1, 3):
        raise ValueError(f"{arch} takes 1- or 3-channel images, got {in_channels} channels")
    model = getattr(torchvision.models, arch)(weights=None)
    pretrained = True if pretrained is None else bool(pretrained)
    if weights is not None:
        _load_state(model, Path(weights), arch)
        pretrained = True
    elif pretrained:
        path = local_imagenet_weights(arch)
        if not path.is_file():
            raise BackboneWeightsError(
                f"ImageNet weights for backbone {arch!r} are not available locally: expected {path} "
                f"(torchvision's cache; set TORCH_HOME to use another). Put the file there (on a machine "
                "with internet: `python -c \"import torchvision; "
                f"torchvision.models.{arch}(weights='IMAGENET1K_V1')\"`), "
                f"pass weights=PATH to a state dict, or pass pretrained=False to train from a random "
                f"initialisation (then it is not the paper's pretrained backbone)")
        _load_state(model, path, arch)
    if arch == "alexnet":
        # conv layers + fc6 + fc7 (dropout, linear, relu twice): the 4096-d fc7 HashNet hashes from
        body = nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *list(model.classifier.children())[:6])
        out = model.classifier[6].in_features
    else:
        out = model.fc.in_features
        model.fc = nn.Identity()
        body = model
    return TorchvisionFeatures(ImageNetAdapter(in_channels), body, out, pretrained)


@register_backbone("alexnet")
def alexnet(in_channels=1, image_size=28, pretrained=None, weights=None):
    return _torchvision("alexnet", in_channels, pretrained, weights)


@register_backbone("resnet18")
def resnet18(in_channels=1, image_size=28, pretrained=None, weights=None):
    return _torchvision("resnet18", in_channels, pretrained, weights)


@register_backbone("resnet50")
def resnet50(in_channels=1, image_size=28, pretrained=None, weights=None):
    return _torchvision("resnet50", in_channels, pretrained, weights)
