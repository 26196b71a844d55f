"""Reading ``.safetensors`` weights into a module whose shapes a JSON file describes,
without trusting either file.

The safetensors header lists every tensor's shape and where its bytes are, so a file cut
short, a header that is not JSON, or an architecture that would not fit the weights (an
edited ``"hidden": [30000, 30000]`` asks for gigabytes) is found before anything is
allocated: the module is first made on PyTorch's ``meta`` device, which has shapes and no
memory.
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


def tensor_shapes(path: Path, error: type[Exception]) -> dict[str, tuple[int, ...]]:
    """The shape of each tensor in ``path``; ``error`` if the file is not whole."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < n <= min(_MAX_HEADER, size - 8):
                raise ValueError("no safetensors header (empty or cut short)")
            header = json.loads(f.read(n))
        end = 0
        shapes = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, stop = info["data_offsets"]
            end = max(end, stop)
            shapes[name] = tuple(int(d) for d in info["shape"])
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is damaged: {exc}") from None
    if size != 8 + n + end:
        raise error(f"{path} is damaged: {size} bytes where its header describes "
                    f"{8 + n + end} (cut short, or something appended)")
    return shapes


def load_tensors(path: Path, error: type[Exception],
                 sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of ``path``, checked whole first, and against ``sha256`` (written
    beside it when it was saved: safetensors has no checksum, and a flipped bit in a
    weight would be read as another weight)."""
    tensor_shapes(path, error)
    if sha256 is not None and hashlib.sha256(Path(path).read_bytes()).hexdigest() != sha256:
        raise error(f"{path} is damaged: its sha256 is not the one written beside it when "
                    "it was saved")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors' own error type is not exported
        raise error(f"{path} is damaged: {exc}") from None


def build(factory: Callable[..., torch.nn.Module], architecture: dict, weights: Path,
          error: type[Exception], prefix: str = "",
          sha256: str | None = None) -> torch.nn.Module:
    """``factory(**architecture)`` with the weights of ``weights`` (the tensors named
    ``prefix`` + a parameter's name), or ``error`` naming what does not fit."""
    if not isinstance(architecture, dict):
        raise error(f"{weights.parent}: the architecture is not a JSON object")
    try:
        with torch.device("meta"):
            probe = factory(**architecture)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise error(f"{weights.parent}: the architecture {architecture} makes no model: "
                    f"{exc}") from None
    shapes = {k[len(prefix):]: v for k, v in tensor_shapes(weights, error).items()
              if k.startswith(prefix)}
    wanted = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    for name, shape in wanted.items():
        if shapes.get(name) != shape:
            raise error(f"{weights} does not fit the architecture {architecture}: "
                        f"{name} is {shapes.get(name, 'missing')}, the model needs {shape}")
    module = factory(**architecture)
    tensors = load_tensors(weights, error, sha256)
    try:
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                if k.startswith(prefix)})
    except RuntimeError as exc:
        raise error(f"{weights} does not fit the architecture {architecture}: {exc}") from None
    return module
