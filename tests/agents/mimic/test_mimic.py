"""Live mimicry: rendered clips of twin faces stand in for a person; the robot is the twin,
or the virtual bus with the twin as plant."""

import json
import signal
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest

from helpers import facetwin_command, virtual_bus, wait_until
from facetwin import profile as profiles
from facetwin.agents.inverse.agent import InverseModelAgent
from facetwin.agents.mimic.loop import mimic
from facetwin.agents.inverse.store import ModelError
from facetwin.agents.runlog import read_runlog
from facetwin.agents.mimic.smoothing import OneEuroFilter
from facetwin.agents.mimic.sources import SourceError
from facetwin.agents.inverse.train import train
from facetwin.agents.optimize.tune import WARM_START_SIDE, tune
from facetwin.cli import main
from facetwin.agents.demo import library_schedule, run_demo
from facetwin.envs.envelope import load_envelope
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.hardware.journal import read_journal

pytestmark = pytest.mark.slow  # the whole module: see the README's test loop

FPS, TRANSITION_S, HOLD_S = 25, 0.3, 0.4


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Each profile performing its expression library, as a person's video would."""
    out = tmp_path_factory.mktemp("clips")
    return {name: run_demo(name, out, fps=FPS, transition_s=TRANSITION_S, hold_s=HOLD_S).video
            for name in ("emo11", "x2c30")}


def frames_log(out):
    return [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]


def test_the_same_face_mimicked_through_the_model_gives_back_its_controls(model, clips, tmp_path):
    model_dir, evaluation = model
    summary = mimic("emo11", model_dir, clips["emo11"], tmp_path, neutral_frames=5,
                    progress=False)
    p = profiles.load("emo11")
    schedule = library_schedule(p.expressions, FPS, TRANSITION_S, HOLD_S)
    assert summary["frames"] == summary["faces_found"] == len(schedule)
    assert summary["neutral_frames"] == 5 and not summary["interrupted"]
    video = iio.imread(tmp_path / "mimicry.mp4")  # playable: every frame decodes
    assert video.shape == (len(schedule), 256, 3 * 256, 3)
    # At the end of each hold the person's face is still: the robot's command is the
    # model's reading of it, which the test split says how well to expect.
    log = frames_log(tmp_path)
    held = [(p.to_box(controls), p.to_box(log[i]["controls"]))
            for i, (name, controls, end) in enumerate(schedule) if end and name != "neutral"]
    error = np.mean([np.abs(a - b).mean() for a, b in held])
    rows = {r["name"]: r["l1"] for r in evaluation["rows"]}
    assert error <= rows["mlp (mediapipe)"], (error, rows)
    assert error < rows["neutral"]
    lat = summary["latency_ms"]
    assert all(lat[stage]["p50"] is not None for stage in ("detect", "map", "infer", "step"))


def test_another_face_with_frames_without_a_face_runs_to_the_end(model, clips, tmp_path):
    frames = iio.imread(clips["x2c30"])
    frames[20:30] = 128  # the person leaves the picture for ten frames
    source = tmp_path / "gap.mp4"
    iio.imwrite(source, frames, fps=FPS, macro_block_size=1)
    out = tmp_path / "out"
    assert main(["mimic", "--profile", "emo11", "--model", str(model[0]), "--source",
                 str(source), "--out", str(out), "--no-preview"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(frames) and summary["no_face_frames"] >= 10
    log = frames_log(out)
    assert [r["face"] for r in log[20:30]] == [False] * 10
    for before, gap in zip(log[19:29], log[20:30]):
        assert gap["controls"] == before["controls"]  # the last command held
    assert len(iio.imread(out / "mimicry.mp4")) == len(frames)


def test_the_astronaut_picture_is_a_source(model, tmp_path):
    from skimage.data import astronaut

    picture = tmp_path / "astronaut.png"
    iio.imwrite(picture, astronaut())
    summary = mimic("emo11", model[0], picture, tmp_path / "out", neutral_frames=0, fps=10,
                    progress=False)
    assert summary["frames"] == summary["faces_found"] == 20  # two seconds at 10 frames/s
    commands = np.array([r["controls"] for r in frames_log(tmp_path / "out")])
    neutral = profiles.load("emo11").neutral
    assert np.abs(commands[-1] - neutral).max() > 0.05  # the face moved towards hers


@pytest.mark.subprocess
def test_mimicry_on_the_serial_bus_sends_only_safe_commands_and_stops_cleanly(
        model, clips, tmp_path):
    link = tmp_path / "face"
    out, journal = tmp_path / "out", tmp_path / "journal.jsonl"
    with virtual_bus("emo11", link, plant=True):
        run = subprocess.Popen(
            facetwin_command("mimic", "--profile", "emo11", "--model", str(model[0]),
                             "--source", str(clips["x2c30"]), "--out", str(out),
                             "--backend", "serial", "--port", str(link),
                             "--camera", f"{link}.png", "--journal", str(journal),
                             "--no-preview"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: (out / "frames.jsonl").exists()  # whole lines only
                   and (out / "frames.jsonl").read_text().count("\n") >= 30,
                   timeout_s=300, what="30 mimicked frames")
        run.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        assert "(interrupted)" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["frames"] >= 30
    assert len(iio.imread(out / "mimicry.mp4")) == summary["frames"]  # closed, playable
    p = profiles.load("emo11")
    envelope = load_envelope(p)
    _, records, torn = read_journal(journal)
    sent = [np.array(r["applied"]) for r in records if r["kind"] == "command"]
    assert torn == 0 and len(sent) >= summary["frames"]
    for applied in sent:  # everything on the wire is inside the safety envelope
        assert np.all(applied >= p.low - 1e-9) and np.all(applied <= p.high + 1e-9)
        assert envelope.predict(p.normalise(applied)) <= envelope.ceiling + 1e-9
    ending = [r for r in records if r["kind"] == "command"][-1]
    assert ending["why"] == "shut-down"
    np.testing.assert_allclose(ending["applied"], p.neutral, atol=1e-6)
    assert records[-1]["kind"] == "torque" and records[-1]["on"] is False


def test_one_euro_filter_follows_its_definition():
    f = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    t = np.arange(50) / 30
    assert f(np.ones(3), 0.0).tolist() == [1.0] * 3  # the first value passes
    assert np.allclose([f(np.ones(3), s) for s in t[1:]], 1.0)  # a constant stays
    # With beta = 0 it is an exponential filter with the cutoff's smoothing factor.
    f.reset()
    f(np.zeros(1), 0.0)
    alpha = 1 / (1 + 1 / (2 * np.pi * 2.0) * 30)
    assert f(np.ones(1), 1 / 30)[0] == pytest.approx(alpha)
    # Noise on a held value is cut; a fast move gets through with beta.
    rng = np.random.default_rng(0)
    noisy = 0.5 + 0.02 * rng.standard_normal((300, 4))
    smooth = OneEuroFilter(1.0, 5.0)
    filtered = np.array([smooth(x, k / 30) for k, x in enumerate(noisy)])
    assert np.abs(np.diff(filtered, axis=0)).mean() < np.abs(np.diff(noisy, axis=0)).mean() / 3
    step = [OneEuroFilter(1.0, b) for b in (0.0, 50.0)]
    reached = [[f(np.array([float(k >= 5)]), k / 30)[0] for k in range(12)][-1] for f in step]
    assert reached[1] > reached[0]
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)


@pytest.mark.subprocess
def test_bad_sources_and_models_are_named(model, dataset, tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        mimic("emo11", model[0], tmp_path / "missing.mp4", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        mimic("emo11", model[0], tmp_path / "empty", tmp_path / "out")
    (tmp_path / "empty" / "note.png").write_text("not a picture")
    with pytest.raises(SourceError, match="note.png: not a readable image"):
        mimic("emo11", model[0], tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(SourceError, match="no face in the neutral picture"):
        mimic("emo11", model[0], tmp_path / "empty", tmp_path / "out",
              neutral=np.full((64, 64, 3), 128, np.uint8))
    ground_truth = tmp_path / "gt"
    train("mlp", dataset[0], ground_truth, epochs=1, progress=False)
    with pytest.raises(ModelError, match="--features mediapipe"):
        mimic("emo11", ground_truth, tmp_path / "empty", tmp_path / "out")
    assert main(["mimic", "--profile", "emo11", "--model", str(model[0]), "--source",
                 str(tmp_path / "empty"), "--min-cutoff", "-1"]) == 2


def test_optimisation_starts_from_the_models_proposal(model, tmp_path):
    from skimage.data import astronaut

    tuned = tune("emo11", astronaut(), tmp_path, budget=4, workers=1, progress=False,
                 init_model=model[0])
    header, records = read_runlog(tmp_path / "runs" / "bo-s0.jsonl")
    assert header["init_model"] == str(model[0]) and tuned.model.exists()
    env = FaceTwinEnv("emo11", features="camera")
    obs, _ = env.reset(options={"target": astronaut()})
    proposal = InverseModelAgent(model[0], env).propose_features(obs["desired_goal"])
    env.close()
    np.testing.assert_allclose(records[0]["controls"], proposal, rtol=1e-6)
    p = profiles.load("emo11")
    first = p.to_box(records[0]["controls"])
    around = np.array([p.to_box(r["controls"]) for r in records[1:]])
    assert len(around) == 3  # the warm design: the proposal and three points about it
    assert np.all(np.abs(around - first) <= WARM_START_SIDE / 2 + 1e-9)
