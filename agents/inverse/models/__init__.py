"""Inverse models (features or images -> controls in [0, 1]) and their baselines."""

from facetwin.agents.inverse.models.baselines import (
    NearestNeighbour, NeutralControls, RandomControls, Ridge,
)
from facetwin.agents.inverse.models.cnn import ImageResNet18
from facetwin.agents.inverse.models.kan import RegionAttentionKAN
from facetwin.agents.inverse.models.mlp import LandmarkMLP

LEARNED = {"mlp": LandmarkMLP, "kan": RegionAttentionKAN, "cnn": ImageResNet18}
BASELINES = {"neutral": NeutralControls, "random": RandomControls,
             "nearest": NearestNeighbour, "ridge": Ridge}
ARCHITECTURES = {**LEARNED, **BASELINES}
