"""Reading ``.safetensors`` weights into a module whose shapes a JSON file describes,
without trusting either file.

A file cut short or with a header that is not JSON is named before it is read; a file
whose bytes changed is named by the sha256 saved beside it; and an architecture that
does not fit the weights (an edited ``"hidden": [30000, 30000]`` asks for gigabytes) is
found before the module is allocated: it is first made on PyTorch's ``meta`` device,
which has shapes and no memory.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file

_MAX_HEADER = 100 * 2**20


def _check_whole(path: Path, error: type[Exception]) -> None:
    """``error`` unless ``path`` is as long as its header says (safetensors itself maps
    a cut-short file and fails late, or not at all)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < n <= min(_MAX_HEADER, size - 8):
                raise ValueError("no safetensors header (empty or cut short)")
            header = json.loads(f.read(n))
        end = max((int(info["data_offsets"][1]) for name, info in header.items()
                   if name != "__metadata__"), default=0)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is damaged: {exc}") from None
    if size != 8 + n + end:
        raise error(f"{path} is damaged: {size} bytes where its header describes "
                    f"{8 + n + end} (cut short, or something appended)")


def load_tensors(path: Path, error: type[Exception],
                 sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of ``path``, checked whole first, and against ``sha256`` (written
    beside it when it was saved: safetensors has no checksum, and a flipped bit in a
    weight would be read as another weight)."""
    _check_whole(path, error)
    if sha256 is not None and hashlib.sha256(Path(path).read_bytes()).hexdigest() != sha256:
        raise error(f"{path} is damaged: its sha256 is not the one written beside it when "
                    "it was saved")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors' own error type is not exported
        raise error(f"{path} is damaged: {exc}") from None


def build(factory: Callable[..., torch.nn.Module], architecture: dict,
          tensors: dict[str, torch.Tensor], error: type[Exception], where: Path,
          prefix: str = "") -> torch.nn.Module:
    """``factory(**architecture)`` holding ``tensors`` (those named ``prefix`` + a
    parameter's name), or ``error`` naming what does not fit; nothing is allocated for a
    module whose shapes are not those of the tensors."""
    if not isinstance(architecture, dict):
        raise error(f"{where}: the architecture is not a JSON object")
    try:
        with torch.device("meta"):
            probe = factory(**architecture)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise error(f"{where}: the architecture {architecture} makes no model: "
                    f"{exc}") from None
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    for name, wanted in probe.state_dict().items():
        have = tuple(state[name].shape) if name in state else "missing"
        if have != tuple(wanted.shape):
            raise error(f"{where} does not fit the architecture {architecture}: "
                        f"{name} is {have}, the model needs {tuple(wanted.shape)}")
    module = factory(**architecture)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise error(f"{where} does not fit the architecture {architecture}: {exc}") from None
    return module
