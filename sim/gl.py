"""One GL stack, whatever the user exported: pyrender on PyOpenGL, never MuJoCo's renderer.

pyrender pins PyOpenGL 3.1.0. Two environment variables reach into that stack:

- ``MUJOCO_GL``: MuJoCo picks its own renderer when it is imported. ``egl`` loads a module
  that needs a newer PyOpenGL (``EGLDeviceEXT``) and fails on import; ``osmesa`` switches
  PyOpenGL's platform under pyrender. FaceTwin never uses MuJoCo's renderer, so MuJoCo is
  imported here with it off, and the variable is left as the user set it.
- ``PYOPENGL_PLATFORM``: ``egl`` (the default) or ``osmesa``, both honoured. pyrender's
  OSMesa platform calls ``OSMesaCreateContextAttribs``, which PyOpenGL 3.1.0 lacks, and
  that version hands back contexts as unhashable pointers, which its own per-context
  bookkeeping cannot store; both are filled in from libOSMesa, as later PyOpenGL does.

``facetwin.sim`` imports this module first, so every entry point gets the same stack.
"""

from __future__ import annotations

import ctypes
import os

_user_mujoco_gl = os.environ.get("MUJOCO_GL")
os.environ["MUJOCO_GL"] = "disable"
try:
    import mujoco  # noqa: F401  (imported renderer-free, for every module of facetwin.sim)
finally:
    if _user_mujoco_gl is None:
        del os.environ["MUJOCO_GL"]
    else:
        os.environ["MUJOCO_GL"] = _user_mujoco_gl

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
PLATFORM = os.environ["PYOPENGL_PLATFORM"].lower()

# Mesa's osmesa.h: attributes of OSMesaCreateContextAttribs.
_OSMESA_ATTRIBUTES = {
    "OSMESA_DEPTH_BITS": 0x30, "OSMESA_STENCIL_BITS": 0x31, "OSMESA_ACCUM_BITS": 0x32,
    "OSMESA_PROFILE": 0x33, "OSMESA_CORE_PROFILE": 0x34, "OSMESA_COMPAT_PROFILE": 0x35,
    "OSMESA_CONTEXT_MAJOR_VERSION": 0x36, "OSMESA_CONTEXT_MINOR_VERSION": 0x37,
}


def _complete_pyopengl_osmesa() -> None:
    from OpenGL import osmesa
    from OpenGL import platform as gl_platform
    from OpenGL.constant import Constant

    if hasattr(osmesa, "OSMesaCreateContextAttribs"):
        return  # a PyOpenGL that has it all
    lib = gl_platform.PLATFORM.OSMesa
    create = lib.OSMesaCreateContextAttribs
    create.restype = ctypes.c_void_p
    create.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_void_p]
    make_current = lib.OSMesaMakeCurrent
    make_current.restype = ctypes.c_ubyte
    make_current.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                             ctypes.c_int]
    destroy = lib.OSMesaDestroyContext
    destroy.argtypes = [ctypes.c_void_p]
    # Contexts as plain addresses (hashable), from creation to every later call.
    current = lib.OSMesaGetCurrentContext
    current.restype = ctypes.c_void_p
    gl_platform.PLATFORM.GetCurrentContext = current
    gl_platform.GetCurrentContext = current

    def create_context(attributes, share):
        values = [int(a) for a in attributes]
        return create((ctypes.c_int * len(values))(*values), share)

    def make(context, buffer, gl_type, width, height):
        return make_current(context, buffer.ctypes.data, int(gl_type), width, height)

    osmesa.OSMesaCreateContextAttribs = create_context
    osmesa.OSMesaMakeCurrent = make
    osmesa.OSMesaDestroyContext = destroy
    for name, value in _OSMESA_ATTRIBUTES.items():
        setattr(osmesa, name, Constant(name, value))


if PLATFORM == "osmesa":
    _complete_pyopengl_osmesa()
