"""Gymnasium environments; importing this module registers ``facetwin/FaceTwin-v0``."""

import gymnasium as gym

ENV_ID = "facetwin/FaceTwin-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="facetwin.envs.face_env:FaceTwinEnv",
                 max_episode_steps=50)
