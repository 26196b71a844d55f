"""The optimisers, their run log, expression libraries and picture targets."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from helpers import wait_until
from facetwin import profile as profiles
from facetwin.agents.optimize.harness import run_search, target_id
from facetwin.agents.runlog import RunLog, RunLogError
from facetwin.agents.optimize.methods import make_search
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.envs.perception import RIGID_LANDMARKS, human_features
from facetwin.library import LibraryError, load_library, save_library
from facetwin.sim.camera import PinholeCamera


@pytest.fixture(scope="module")
def emo11_env():
    env = FaceTwinEnv("emo11", image_size=128)
    yield env
    env.close()


def _header(p, target):
    return {"profile": p.name, "profile_sha256": p.sha256, "target": target_id(target)}


@pytest.mark.slow
def test_bo_finds_controls_closer_to_the_target_than_neutral(emo11_env, tmp_path):
    p = emo11_env.profile
    search = make_search("bo", p.low, p.high, p.neutral, seed=0,
                         strain_limit=p.strain_ceiling, batch=2)
    run = run_search(emo11_env, {"target": "surprise"}, search, budget=16, batch=2,
                     log_path=tmp_path / "bo.jsonl", header=_header(p, "surprise"),
                     progress=False)
    neutral = run.records[0]
    assert neutral["controls"] == p.neutral.tolist()  # the start point
    assert run.best["distance_mm"] < 0.6 * neutral["distance_mm"]
    assert all(len(r["residual"]) == 478 * 3 + 3 for r in run.records)
    assert all(r["strain"] <= p.strain_ceiling for r in run.records)


@pytest.mark.slow
def test_baselines_share_the_harness_and_are_seeded(emo11_env, tmp_path):
    p = emo11_env.profile
    runs = {}
    for method in ("random", "cmaes"):
        for attempt in (0, 1):
            search = make_search(method, p.low, p.high, p.neutral, seed=3)
            runs[method, attempt] = run_search(
                emo11_env, {"target": "happiness"}, search, budget=6, batch=2,
                log_path=tmp_path / f"{method}{attempt}.jsonl",
                header=_header(p, "happiness"), progress=False)
    for method in ("random", "cmaes"):
        a, b = runs[method, 0].records, runs[method, 1].records
        assert [r["controls"] for r in a] == [r["controls"] for r in b]
        assert [r["score"] for r in a] == [r["score"] for r in b]
    assert runs["random", 0].records[0]["controls"] != runs["cmaes", 0].records[0]["controls"]


@pytest.mark.slow
def test_a_scorer_drives_the_search_from_images(emo11_env, tmp_path):
    p = emo11_env.profile
    seen = []

    def dark_mouth(obs):  # a stand-in for a learned preference model
        image = obs["image"]
        seen.append(image.shape)
        h, w = image.shape[:2]
        return -float(image[int(0.62 * h):int(0.8 * h), int(0.35 * w):int(0.65 * w)].mean())

    search = make_search("bo", p.low, p.high, p.neutral, seed=1, batch=2)
    run = run_search(emo11_env, {"target": "neutral"}, search, budget=12, batch=2,
                     log_path=tmp_path / "scored.jsonl", header=_header(p, "neutral"),
                     scorer=dark_mouth, progress=False)
    assert seen and seen[0] == (128, 128, 3)
    assert "residual" not in run.records[0]
    assert run.best["score"] > run.records[0]["score"]


def _evaluation(index: int, score: float) -> dict:
    return {"batch": index // 2, "batch_size": 2, "index": index, "controls": [0.1, 0.2],
            "applied": [0.1, 0.2], "score": score}


def test_run_log_drops_a_torn_line_and_refuses_another_run(tmp_path):
    path = tmp_path / "run.jsonl"
    header = {"method": "bo", "seed": 0, "batch": 2, "profile": "emo11",
              "profile_sha256": "abc", "target": "expression:happiness"}
    log = RunLog(path, header)
    log.append(_evaluation(0, -1.0))
    with open(path, "a") as f:
        f.write('{"kind":"eval","index":1,"sco')  # killed mid-write
    resumed = RunLog(path, header)
    assert [r["index"] for r in resumed.records] == [0]
    resumed.append(_evaluation(1, -0.5))
    assert [r["index"] for r in RunLog(path, header).records] == [0, 1]
    with pytest.raises(RunLogError, match="seed"):
        RunLog(path, {**header, "seed": 1})


def test_library_round_trip_and_refusals(tmp_path):
    p = profiles.load("emo11")
    smile = p.expressions["happiness"].copy()
    smile[p.index("jaw")] = p.high[p.index("jaw")]
    path = save_library(tmp_path / "library.json", p, {"grin": smile})
    save_library(path, p, {"frown": p.expressions["sadness"]})
    loaded = load_library(path, p)
    assert set(loaded) == {"grin", "frown"}
    np.testing.assert_allclose(loaded["grin"], smile, atol=1e-6)

    env = FaceTwinEnv("emo11", image_size=64, library=path)
    obs, info = env.reset(options={"target": "grin"})
    assert info["target"] == "grin"
    obs, reward, *_, info = env.step(env.expressions["grin"])
    assert reward > -0.05  # the face reproduces the stored expression
    env.close()

    with pytest.raises(LibraryError, match="made for profile 'emo11', not 'x2c30'"):
        FaceTwinEnv("x2c30", image_size=64, library=path)
    doc = json.loads(path.read_text())
    doc["expressions"]["grin"]["jaw"] = "wide"
    path.write_text(json.dumps(doc))
    with pytest.raises(LibraryError, match="'jaw': 'wide' is not a finite number"):
        load_library(path, p)
    doc["profile_sha256"] = "0" * 64
    path.write_text(json.dumps(doc))
    with pytest.raises(LibraryError, match="another version of profile 'emo11'"):
        load_library(path, p)


def test_human_features_are_relative_to_each_faces_neutral():
    p = profiles.load("emo11")
    camera = PinholeCamera.from_profile(p.camera, 256)
    rng = np.random.default_rng(0)
    robot = rng.uniform(60, 200, (478, 2))
    human_neutral = robot * 2.0 + [40.0, -10.0]  # a bigger face, elsewhere in its photo
    human = human_neutral.copy()
    moving = [i for i in range(478) if i not in RIGID_LANDMARKS][:50]
    human[moving, 1] += 6.0  # 6 px down on the person = 3 px down on the robot
    f = human_features(human, human_neutral, robot, camera)
    d = f[:-3].reshape(478, 3)
    mm_per_px = camera.pose[2, 3] / camera.focal_px * 1e3
    np.testing.assert_allclose(d[moving, 1], -3.0 * mm_per_px, rtol=1e-4)
    assert np.abs(d[RIGID_LANDMARKS]).max() < 1e-4
    reach = (np.full((478, 2), -0.1), np.full((478, 2), 0.1))
    clipped = human_features(human, human_neutral, robot, camera, reach=reach)
    assert np.abs(clipped[:-3]).max() <= 0.1 + 1e-6


@pytest.mark.slow
def test_a_picture_target_needs_the_camera_and_a_face(tmp_path):
    from skimage.data import astronaut

    env = FaceTwinEnv("emo11", image_size=128, features="camera")
    obs, info = env.reset(options={"target": astronaut()})
    assert info["target"] == "picture"
    assert np.abs(obs["desired_goal"]).max() > 0.5  # the portrait is not the twin's neutral
    with pytest.raises(ValueError, match="found no face in the target picture"):
        env.reset(options={"target": np.zeros((128, 128, 3), np.uint8)})
    env.close()
    plain = FaceTwinEnv("emo11", image_size=64)
    with pytest.raises(ValueError, match="features='camera'"):
        plain.reset(options={"target": astronaut()})
    plain.close()


def _optimize(out, *extra):
    return [sys.executable, "-m", "facetwin.cli", "optimize", "--profile", "emo11",
            "--target", "surprise", "--budget", "14", "--workers", "1", "--out", str(out),
            *extra]


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_optimize(whole), check=True, capture_output=True, timeout=600)
    log = killed / "runs" / "bo-s0.jsonl"
    proc = subprocess.Popen(_optimize(killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # Killed wherever it has got to once it has logged something: any point must resume.
    wait_until(lambda: log.exists() and '"kind":"eval"' in log.read_text(), timeout_s=300,
               what="the first logged evaluation")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= log.read_text().count('"kind":"eval"') <= 14
    subprocess.run(_optimize(killed), check=True, capture_output=True, timeout=600)

    def evals(path):
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        return [(r["controls"], r["score"]) for r in lines if r["kind"] == "eval"]

    assert evals(log) == evals(whole / "runs" / "bo-s0.jsonl")
    assert json.loads((killed / "library.json").read_text()) == \
        json.loads((whole / "library.json").read_text())


@pytest.mark.slow
def test_the_lean_posterior_equals_botorchs():
    """BO's acquisition reads the GP through a dense re-implementation of its posterior;
    it must sample what BoTorch's own posterior samples."""
    import torch
    from botorch.sampling import SobolQMCNormalSampler

    from facetwin.agents.optimize.bayesopt import BayesOpt, _LeanPosterior
    from facetwin.envs.expression import residual_weights

    rng = np.random.default_rng(0)
    d, n = 5, 16
    low, high = np.full(d, -2.0), np.full(d, 3.0)  # not the unit box: inputs are scaled
    mix = rng.normal(size=(d, len(residual_weights())))
    bo = BayesOpt(low, high, np.full(d, 0.5), seed=0, strain_limit=1.4)
    X = low + rng.random((n, d)) * (high - low)
    residuals = np.sin(X) @ mix
    bo.tell(X, [{"score": -float(np.linalg.norm(r)), "residual": r.tolist(),
                 "strain": 1.0 + 0.01 * x[0]} for r, x in zip(residuals, X)])
    model = bo._fit(n)[0]
    points = torch.tensor(low) + torch.rand(7, 2, d, dtype=torch.float64) * 5.0
    exact = model.posterior(points)
    lean = _LeanPosterior(model, torch.tensor(X)).posterior(points)
    assert exact.mean.shape == lean.mean.shape and exact.mean.shape[-1] > 2
    torch.testing.assert_close(lean.mean, exact.mean, atol=1e-9, rtol=0)
    torch.testing.assert_close(lean.variance, exact.variance, atol=1e-6, rtol=1e-6)
    draw = [SobolQMCNormalSampler(torch.Size([16]), seed=1)(post) for post in (exact, lean)]
    torch.testing.assert_close(draw[1], draw[0], atol=1e-6, rtol=1e-6)
