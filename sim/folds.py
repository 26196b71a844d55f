"""The skin's expression folds, shown in the texture as the skin is compressed (see
``facetwin.assets.wrinkles``): each fold's weight from the skin's vertices, and the
texture with every fold at its weight."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facetwin.sim.face import FaceAsset

DEPTH = 0.5  # a full fold darkens its line's middle by this share


class SkinFolds:
    def __init__(self, face: FaceAsset, base: np.ndarray):
        """``base``: the skin texture without folds, (H, W, 3) floats in [0, 1]."""
        self.face, self.base = face, base
        folds = np.asarray(Image.open(face.wrinkles_path).convert("RGB"))
        if folds.shape[:2] != base.shape[:2]:
            folds = np.asarray(Image.fromarray(folds).resize(base.shape[1::-1], Image.NEAREST))
        self.depth = folds[..., 0].astype(np.float32) / 255
        self.index = folds[..., 1].astype(np.int64)
        v = face.vertices
        self._rest = [np.linalg.norm(v[w.pairs[:, 0]] - v[w.pairs[:, 1]], axis=1)
                      for w in face.wrinkles]
        self.boxes = []  # (row slice, column slice) of each fold's texels
        for w in face.wrinkles:
            rows, cols = np.nonzero((self.index == w.index) & (self.depth > 0))
            self.boxes.append((slice(rows.min(), rows.max() + 1),
                               slice(cols.min(), cols.max() + 1)) if len(rows) else None)

    def weights(self, vertices: np.ndarray) -> np.ndarray:
        """Each fold's weight in [0, 1] for skin vertices at ``vertices`` (any frame)."""
        out = np.zeros(len(self.face.wrinkles))
        for k, (w, rest) in enumerate(zip(self.face.wrinkles, self._rest)):
            length = np.linalg.norm(vertices[w.pairs[:, 0]] - vertices[w.pairs[:, 1]], axis=1)
            squeeze = 1.0 - float(np.mean(length / rest))
            out[k] = np.clip((squeeze - w.onset) / (w.full - w.onset), 0.0, 1.0)
        return out

    def texture(self, weights: np.ndarray, box=(slice(None), slice(None))) -> np.ndarray:
        """The texture (or its ``box``) with the folds at ``weights``, uint8."""
        per_texel = np.concatenate([[0.0], weights])[self.index[box]]
        shade = 1.0 - DEPTH * per_texel * self.depth[box]
        return (self.base[box] * shade[..., None] * 255).round().astype(np.uint8)
