"""Inverse models (features or images -> controls in [0, 1]) and their baselines."""

from facetwin.agents.models.baselines import (
    NearestNeighbour, NeutralControls, RandomControls, Ridge,
)
from facetwin.agents.models.cnn import ImageResNet18
from facetwin.agents.models.kan import RegionAttentionKAN
from facetwin.agents.models.mlp import LandmarkMLP

LEARNED = {"mlp": LandmarkMLP, "kan": RegionAttentionKAN, "cnn": ImageResNet18}
BASELINES = {"neutral": NeutralControls, "random": RandomControls,
             "nearest": NearestNeighbour, "ridge": Ridge}
ARCHITECTURES = {**LEARNED, **BASELINES}
