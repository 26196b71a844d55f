"""Headless rendering of the twin with pyrender (EGL, or OSMesa: see :mod:`facetwin.sim.gl`).

The skin is one textured mesh whose vertices follow MuJoCo's flex every frame; the
eyeballs, skull, mouth cavity and teeth are rigid meshes posed from MuJoCo's bodies.

Lighting is Lambertian, computed per vertex on the CPU and drawn with pyrender's flat
shader: on a CPU-only GL (llvmpipe) pyrender's per-pixel PBR shader costs about three
times as much as the whole flat frame, and Gouraud shading of a face this size looks
the same at webcam resolutions. Rigid parts carry their shading baked in.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pyrender
import trimesh
from OpenGL import GL
from PIL import Image

from facetwin.sim.camera import PinholeCamera
from facetwin.sim.face import FaceAsset
from facetwin.sim.folds import SkinFolds
from facetwin.sim.randomization import Randomization
from facetwin.sim.twin import Twin

BACKGROUND = (0.55, 0.58, 0.62)
FOLD_STEP = 0.01  # a fold's weight is redrawn when it moves by more than this


@dataclass(frozen=True)
class Look:
    """Lighting and skin tint; randomised per episode when domain randomisation is on."""

    key: float = 0.55  # share of light from the key light
    key_direction: tuple[float, float, float] = (-0.3, -0.4, -1.0)  # light travels along
    ambient: float = 0.6
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @classmethod
    def sample(cls, r: Randomization, rng: np.random.Generator) -> "Look":
        look = cls()
        if r.light:
            j = r.light
            look = cls(key=look.key * rng.uniform(1 - j, 1 + j),
                       key_direction=tuple(np.asarray(look.key_direction)
                                           + rng.uniform(-j, j, 3)),
                       ambient=look.ambient * rng.uniform(1 - j, 1 + j))
        if r.texture_tint:
            look = cls(look.key, look.key_direction, look.ambient,
                       tuple(1 + rng.uniform(-r.texture_tint, r.texture_tint, 3)))
        return look

    def shade(self, normals: np.ndarray) -> np.ndarray:
        to_light = -np.asarray(self.key_direction, dtype=float)
        to_light /= np.linalg.norm(to_light)
        return self.ambient + self.key * np.clip(normals @ to_light, 0.0, None)


def _pose(rot: np.ndarray, pos: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, pos
    return t


def _coloured(mesh: trimesh.Trimesh, colours, look: Look) -> pyrender.Mesh:
    colours = np.broadcast_to(np.asarray(colours, dtype=float), mesh.vertices.shape)
    lit = colours * look.shade(mesh.vertex_normals)[:, None]
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=(
        np.clip(lit, 0, 1) * 255).astype(np.uint8))
    return pyrender.Mesh.from_trimesh(mesh, smooth=True)


def _ellipsoid(axes, subdivisions: int = 3) -> trimesh.Trimesh:
    m = trimesh.creation.icosphere(subdivisions=subdivisions)
    m.vertices *= np.asarray(axes)
    return m


# Widths of the teeth along the arch from the middle (incisors, canine, premolars), mm.
TOOTH_WIDTHS_MM = (8.5, 6.5, 7.5, 7.0, 7.0)


def _teeth(arch: np.ndarray, top: float, bottom: float, colour, look: Look,
           offset=(0.0, 0.0, 0.0)) -> pyrender.Mesh:
    """A row of teeth: a band along the arch from ``top`` to ``bottom`` (y, metres), each
    tooth's edges shaded darker."""
    n = 120
    t = np.linspace(0, 1, len(arch))
    s = np.linspace(0, 1, n)
    x, z = np.interp(s, t, arch[:, 0]), np.interp(s, t, arch[:, 1])
    along = np.concatenate([[0], np.cumsum(np.hypot(np.diff(x), np.diff(z)))])
    along = (along - along[np.argmin(np.abs(x))]) * 1e3  # mm from the middle
    edges = np.concatenate([[0], np.cumsum(TOOTH_WIDTHS_MM)])
    gap = np.min(np.abs(np.abs(along)[:, None] - edges[None]), axis=1)
    shade = np.where(gap < 0.4, 0.55, 1.0)
    vertices = np.concatenate([np.column_stack([x, np.full(n, y), z]) for y in (top, bottom)])
    i = np.arange(n - 1)
    faces = np.concatenate([np.column_stack([i, i + n, i + 1]),
                            np.column_stack([i + 1, i + n, i + n + 1])])
    mesh = trimesh.Trimesh(vertices + np.asarray(offset), faces, process=False)
    colours = np.asarray(colour)[None] * np.tile(shade, 2)[:, None]
    return _coloured(mesh, colours, look)


def _eyeball(face: FaceAsset, side: str, look: Look) -> pyrender.Mesh:
    eye = face.eyes[side]
    ball = trimesh.creation.icosphere(subdivisions=4, radius=eye.radius)
    v = ball.vertices / eye.radius
    lateral = np.linalg.norm(v[:, :2], axis=1) * eye.radius
    front = v[:, 2] > 0
    c = face.colours
    colours = np.tile(c["sclera"], (len(v), 1))
    colours[front & (lateral < eye.iris_radius)] = c["iris"]
    colours[front & (lateral < eye.pupil_radius)] = c["pupil"]
    return _coloured(ball, colours, look)


class FaceRenderer:
    """Renders a :class:`Twin` from a :class:`PinholeCamera` to RGB and depth.

    ``plain_skin=True`` paints the skin in its one colour, without brows, lips or lashes:
    what the face's shape alone shows."""

    def __init__(self, twin: Twin, camera: PinholeCamera, look: Look = Look(),
                 plain_skin: bool = False):
        self.twin, self.face = twin, twin.face
        self.camera = camera
        self._renderer: pyrender.OffscreenRenderer | None = None
        self.scene = pyrender.Scene(bg_color=(*BACKGROUND, 1.0), ambient_light=np.ones(3))
        self._rigid_nodes: list = []
        face = self.face
        image = np.asarray(Image.open(face.texture_path).convert("RGB"), dtype=np.float32) / 255
        if plain_skin:
            image = np.broadcast_to(np.asarray(face.colours["skin"], dtype=np.float32),
                                    image.shape).copy()
        self.folds = SkinFolds(face, image)
        self._fold_weights = np.zeros(len(face.wrinkles))
        self._texture = pyrender.Texture(source=self.folds.texture(self._fold_weights),
                                         source_channels="RGB")
        material = pyrender.MetallicRoughnessMaterial(baseColorTexture=self._texture,
                                                      metallicFactor=0.0)
        vertices = face.vertices.astype(np.float32)
        self._skin = pyrender.Primitive(
            positions=vertices, normals=self._normals(vertices),
            texcoord_0=face.uv.astype(np.float32), indices=face.triangles.astype(np.uint32),
            color_0=np.ones((len(vertices), 4), dtype=np.float32), material=material)
        self.scene.add(pyrender.Mesh([self._skin]))
        self._camera_node = self.scene.add(pyrender.PerspectiveCamera(
            yfov=np.radians(camera.fovy_deg), znear=0.05, zfar=3.0,
            aspectRatio=camera.width / camera.height))
        self.set_camera(camera)
        self.set_look(look)

    def _add_rigid_parts(self) -> None:
        """Skull, mouth cavity, teeth and eyeballs, shaded for the current look."""
        for node in self._rigid_nodes:
            self.scene.remove_node(node)
        face, look, c = self.face, self.look, self.face.colours
        skull = _ellipsoid(face.skull_axes)
        skull.vertices += face.skull_centre
        top = face.vertices[:, 1].max() - 0.01
        hair = (skull.vertices[:, 1] > top) | (skull.vertices[:, 2] < face.skull_centre[2] - 0.02)
        head = [_coloured(skull, np.where(hair[:, None], c["hair"], c["skin"]), look)]
        mc, w = face.mouth_centre, face.mouth_width
        cavity = _ellipsoid([0.5 * w, 0.022, 0.012])
        cavity.vertices += mc + [0.0, -0.012, -0.021]
        head.append(_coloured(cavity, c["mouth"], look))
        teeth = face.teeth
        head.append(_teeth(teeth.arch, *teeth.upper, c["teeth"], look))
        lower = _teeth(teeth.arch - [0.0, teeth.lower_behind], *teeth.lower, c["teeth"], look,
                       offset=-face.jaw_pivot)
        self._head_nodes = [self.scene.add(m) for m in head]
        self._jaw_node = self.scene.add(lower)
        self.teeth_nodes = [self._head_nodes[-1], self._jaw_node]
        self._eye_nodes = {side: self.scene.add(_eyeball(face, side, look))
                           for side in face.eyes}
        self._rigid_nodes = [*self._head_nodes, self._jaw_node, *self._eye_nodes.values()]

    def _normals(self, vertices: np.ndarray) -> np.ndarray:
        tri = self.face.triangles
        n = np.cross(vertices[tri[:, 1]] - vertices[tri[:, 0]],
                     vertices[tri[:, 2]] - vertices[tri[:, 0]])
        out = np.zeros_like(vertices)
        for k in range(3):
            np.add.at(out, tri[:, k], n)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(
            np.float32)

    def set_camera(self, camera: PinholeCamera) -> None:
        if (camera.width, camera.height) != (self.camera.width, self.camera.height):
            raise ValueError("a renderer keeps its image size; make a new one to change it")
        self.camera = camera
        self.scene.set_pose(self._camera_node, camera.pose)

    def set_look(self, look: Look) -> None:
        self.look = look
        self._add_rigid_parts()

    def _sync(self) -> None:
        twin = self.twin
        pos, rot = twin.head_pose()
        head = _pose(rot, pos)
        for node in self._head_nodes:
            self.scene.set_pose(node, head)
        jaw_id = twin.model.body("jaw").id
        self.scene.set_pose(self._jaw_node, _pose(twin.data.xmat[jaw_id].reshape(3, 3),
                                                  twin.data.xpos[jaw_id]))
        for side, node in self._eye_nodes.items():
            centre, erot = twin.eye_pose(side)
            self.scene.set_pose(node, _pose(erot, centre))
        vertices = twin.skin_vertices().astype(np.float32)
        normals = self._normals(vertices)
        shade = self.look.shade(normals)[:, None] * self.look.tint
        self._skin.positions = vertices
        self._skin.normals = normals
        self._skin.color_0 = np.column_stack([shade, np.ones(len(shade))]).astype(np.float32)
        self._upload_skin()
        self._show_folds(self.folds.weights(vertices))

    def _show_folds(self, weights: np.ndarray) -> None:
        """Redraw the texels of the folds whose weight changed, and upload just those."""
        changed = np.abs(weights - self._fold_weights) > FOLD_STEP
        if not changed.any():
            return
        self._fold_weights = np.where(changed, weights, self._fold_weights)
        texture = self._texture
        if self._renderer is None or texture._texid is None:
            texture.source = self.folds.texture(self._fold_weights)  # uploaded when first drawn
            return
        self._renderer._platform.make_current()
        GL.glBindTexture(GL.GL_TEXTURE_2D, texture._texid)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)  # rows of 3-byte texels are not 4-aligned
        height = texture.source.shape[0]
        for k in np.flatnonzero(changed):
            box = self.folds.boxes[k]
            if box is None:
                continue
            texels = self.folds.texture(self._fold_weights, box)
            texture.source[box] = texels
            rows, cols = box
            # pyrender uploads images bottom row first
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, cols.start, height - rows.stop,
                               cols.stop - cols.start, rows.stop - rows.start, GL.GL_RGB,
                               GL.GL_UNSIGNED_BYTE, np.ascontiguousarray(texels[::-1]))
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)

    def fold_weights(self) -> dict[str, float]:
        """How far each expression fold is shown in the last frame, 0 to 1."""
        return {w.name: float(v) for w, v in zip(self.face.wrinkles, self._fold_weights)}

    def _upload_skin(self) -> None:
        """Overwrite the skin's vertex buffer in place. pyrender uploads a mesh once,
        and re-creating the mesh each frame would re-upload its texture too."""
        prim = self._skin
        if self._renderer is None or not prim._in_context():
            return  # first frame: pyrender uploads it
        self._renderer._platform.make_current()
        data = np.hstack([prim.positions, prim.normals, prim.texcoord_0,
                          prim.color_0]).astype(np.float32)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, prim._buffers[0])
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, np.ascontiguousarray(data))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def render(self, depth: bool = False):
        """RGB image (H, W, 3) uint8, or (rgb, depth in metres) with ``depth=True``."""
        self._sync()
        if self._renderer is None:  # first frame, or rendering again after close()
            self._renderer = pyrender.OffscreenRenderer(self.camera.width, self.camera.height)
            platform = self._renderer._platform
            if hasattr(platform, "_egl_context"):
                platform.delete_context = types.MethodType(_release_egl_context, platform)
        rgb, z = self._renderer.render(self.scene, flags=pyrender.RenderFlags.FLAT)
        return (rgb.copy(), z.copy()) if depth else rgb.copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None


def _release_egl_context(platform) -> None:
    """Destroy one renderer's EGL context but keep the display: pyrender's own version
    also calls eglTerminate, and every renderer in a process shares the display, so
    closing one env (or garbage-collecting it) would break all the others."""
    from OpenGL.EGL import eglDestroyContext

    if platform._egl_display is not None and platform._egl_context is not None:
        eglDestroyContext(platform._egl_display, platform._egl_context)
    platform._egl_context = None
