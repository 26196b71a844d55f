"""X2C's image regressor: a ResNet-18-shaped network on the render, with a regression
head and a sigmoid (x2c-expression-to-control, Sec. 4). Plain torch, trained from
scratch: no pretrained weights can be downloaded here, and torchvision's PyPI build does
not load against this CPU torch. ``width`` is the first stage's channels (ResNet-18 has
64); the stages double it, two basic blocks each, as in ResNet-18."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ImageResNet18(nn.Module):
    def __init__(self, n_controls: int, image_size: int = 64, width: int = 16):
        super().__init__()
        self.config = {"n_controls": n_controls, "image_size": image_size, "width": width}
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, c = [], width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out = width * 2 ** stage
            blocks += [BasicBlock(c, out, stride), BasicBlock(out, out, 1)]
            c = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c, 256), nn.ReLU(),
                                  nn.Linear(256, n_controls), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1.0  # uint8 pixels in
        x = self.blocks(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(x, 1))
