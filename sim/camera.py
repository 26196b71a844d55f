"""A pinhole camera like a webcam in front of the face, shared by rendering and landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.profile import Camera


@dataclass(frozen=True)
class PinholeCamera:
    """OpenGL-style camera: looks down its -z axis, +y up; ``pose`` is camera-to-world."""

    pose: np.ndarray  # (4, 4)
    fovy_deg: float
    width: int
    height: int

    @classmethod
    def from_profile(cls, cam: Camera, size: int | tuple[int, int] | None = None,
                     offset: np.ndarray | None = None, tilt_deg: np.ndarray | None = None):
        """The profile's camera, optionally moved by ``offset`` (m) and turned by
        ``tilt_deg`` (yaw, pitch, roll) for domain randomisation."""
        w, h = (size, size) if isinstance(size, int) else (size or (cam.size, cam.size))
        pose = np.eye(4)
        if tilt_deg is not None:
            pose[:3, :3] = _rotation(*np.radians(tilt_deg))
        pose[:3, 3] = [0.0, cam.height, cam.distance]
        if offset is not None:
            pose[:3, 3] += offset
        return cls(pose, cam.fovy_deg, w, h)

    @property
    def focal_px(self) -> float:
        return 0.5 * self.height / np.tan(np.radians(self.fovy_deg) / 2)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) to pixel coordinates (N, 2): x right, y down, from the
        image's top-left corner (pixel centres at +0.5)."""
        rot, t = self.pose[:3, :3], self.pose[:3, 3]
        p = (np.asarray(points) - t) @ rot
        f = self.focal_px
        depth = -p[:, 2]
        return np.column_stack([0.5 * self.width + f * p[:, 0] / depth,
                                0.5 * self.height - f * p[:, 1] / depth])


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), \
        np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz
