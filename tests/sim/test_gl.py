"""The env and the command line work whatever GL the user exported: MUJOCO_GL and
PYOPENGL_PLATFORM unset, ``egl`` or ``osmesa``, each in a fresh process."""

import pytest
import itertools
import json
import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import json, sys
import gymnasium as gym
import numpy as np
import facetwin.envs
from facetwin.cli import main

assert main(["profiles"]) == 0
env = gym.make("facetwin/FaceTwin-v0", profile="emo11", image_size=64)
obs, _ = env.reset(seed=0, options={"target": "happiness"})
obs, *_ = env.step(env.unwrapped.profile.expressions["surprise"])
env.close()
from OpenGL import platform
print(json.dumps({"image": obs["image"].tolist(), "landmarks": obs["landmarks"].tolist(),
                  "gl": type(platform.PLATFORM).__name__}))
"""
SETTINGS = (None, "egl", "osmesa")


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_env_runs_under_every_gl_setting():
    runs = {}
    for mujoco_gl, pyopengl in itertools.product(SETTINGS, SETTINGS):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
        env.update({k: v for k, v in (("MUJOCO_GL", mujoco_gl),
                                      ("PYOPENGL_PLATFORM", pyopengl)) if v})
        runs[mujoco_gl, pyopengl] = subprocess.Popen(
            [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
    results = {}
    for setting, proc in runs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"MUJOCO_GL, PYOPENGL_PLATFORM = {setting}:\n{err[-2000:]}"
        results[setting] = json.loads(out.strip().splitlines()[-1])
    for (mujoco_gl, pyopengl), r in results.items():
        # PyOpenGL's platform is the user's choice (EGL by default); MuJoCo's never matters.
        assert r["gl"] == ("OSMesaPlatform" if pyopengl == "osmesa" else "EGLPlatform")
    reference = results[None, None]
    for setting, r in results.items():
        assert r["landmarks"] == reference["landmarks"], setting
        image, ref = np.array(r["image"], float), np.array(reference["image"], float)
        assert image.std() > 10 and np.abs(image - ref).mean() < 2.0, setting  # same face
