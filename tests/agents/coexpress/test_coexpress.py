"""Coexpression: onsets labelled as Emo labels them, synthetic people as data, Emo's
predictive model, and the live loop on the virtual bus. The "people" are twin faces
(x2c30) filmed through MediaPipe; the robot is emo11."""

import json
import os
import signal
import subprocess

import imageio.v3 as iio
import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import facetwin_command, virtual_bus, wait_until
from facetwin import profile as profiles
from facetwin.agents.coexpress.evaluate import evaluate_predictor
from facetwin.agents.coexpress.labelling import NoOnset, label_onset
from facetwin.agents.coexpress.onsets import OnsetDataError, read_meta
from facetwin.agents.coexpress.people import Performance
from facetwin.agents.coexpress.predictor import PredictorError, load_predictor
from facetwin.agents.coexpress.record import film, record_synthetic, record_videos
from facetwin.agents.coexpress.train import train_predictor
from facetwin.envs.envelope import load_envelope
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.hardware.journal import read_journal

pytestmark = pytest.mark.slow

FPS, NOISE, STILL_HEAD = 30.0, 2.0, (0.0,) * 6 + (0.2,)
PEOPLE, PER_PERSON = 16, 10  # 12 people (59 training sequences) are too few to beat mimicry


def performance(emotion: str, onset_s: float, intensity: float = 1.0) -> Performance:
    return Performance(emotion, None, 1.0, intensity, 0.5, onset_s, 0.5, False, STILL_HEAD)


@pytest.fixture(scope="module")
def person():
    env = FaceTwinEnv("x2c30", image_size=256, step_mode="period")
    yield env
    env.close()


def known_marks(pf: Performance, frames: int) -> tuple[int, int, int]:
    """Onset, peak activation and target of a performance, from its schedule: a minimum
    jerk is 10 % of its way at 0.2 of its time, 95 % at 0.82, and accelerates most at
    (3 - sqrt(3)) / 6 of it."""
    progress = np.array([pf.progress(f / FPS) for f in range(frames)])
    return (int(np.flatnonzero(progress >= 0.1)[0]),
            round((pf.rest_s + (3 - np.sqrt(3)) / 6 * pf.onset_s) * FPS),
            int(np.flatnonzero(progress >= 0.95)[0]))


def test_the_labelling_finds_onset_peak_activation_and_target_of_a_clip_of_known_timing(
        person):
    for emotion, onset_s in (("surprise", 0.8), ("happiness", 0.5)):
        pf = performance(emotion, onset_s)
        seen, _, _ = film(person, pf, 7, FPS, NOISE, np.random.default_rng(0))
        label = label_onset(seen)
        got, known = (label.onset, label.activation, label.target), known_marks(pf, len(seen))
        assert np.abs(np.subtract(got, known)).max() <= 1, (emotion, got, known)
    still = performance("surprise", 0.8, intensity=0.0)
    seen, _, _ = film(person, still, 7, FPS, NOISE, np.random.default_rng(0))
    with pytest.raises(NoOnset, match="no clear rise"):
        label_onset(seen)
    seen[12:14] = np.nan
    with pytest.raises(NoOnset, match="no face in 2 frames"):
        label_onset(seen)


def test_videos_of_people_are_labelled_and_a_clip_without_an_onset_is_skipped(person,
                                                                               tmp_path):
    clips = tmp_path / "videos"
    (clips / "ada").mkdir(parents=True)
    seen = {}
    for name, pf in (("surprise", performance("surprise", 0.8)),
                     ("still", performance("surprise", 0.8, intensity=0.0))):
        seen[name], _, frames = film(person, pf, 3, FPS, NOISE, np.random.default_rng(1),
                                     images=True)
        iio.imwrite(clips / "ada" / f"{name}.mp4", np.array(frames), fps=FPS,
                    macro_block_size=1)
    # One labelled clip of one person is kept, and is too little to learn from.
    with pytest.raises(OnsetDataError, match="1 sequences with a clear onset, too few"):
        record_videos(clips, tmp_path / "data", progress=False)
    meta = read_meta(tmp_path / "data")
    assert meta["sequences"] == 2 and meta["labelled"] == 1
    assert meta["skipped"][0]["name"] == "ada/still.mp4"
    assert "no clear rise" in meta["skipped"][0]["why"]
    made = {r["emotion"]: r for r in pq.read_table(tmp_path / "data" / "shards").to_pylist()}
    got = tuple(made["surprise"][k] for k in ("onset", "activation", "target"))
    known = known_marks(performance("surprise", 0.8), len(seen["surprise"]))
    assert np.abs(np.subtract(got, known)).max() <= 1, (got, known)


@pytest.fixture(scope="module")
def onsets(tmp_path_factory):
    """Synthetic people by the command line, killed with SIGKILL after the first person
    and made again; beside it the same dataset made in one go."""
    root = tmp_path_factory.mktemp("onsets")
    out = root / "resumed"
    command = facetwin_command("onsets", "--synthetic", "--profile", "x2c30", "--people",
                               str(PEOPLE), "--per-person", str(PER_PERSON), "--seed", "3",
                               "--workers", "2", "--out", str(out))
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: len(list((out / "shards").glob("person-*.parquet"))) >= 1,
               timeout_s=600, what="the first person")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = len(list((out / "shards").glob("person-*.parquet")))
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    return out, at_kill, root


@pytest.mark.subprocess
def test_synthetic_people_resume_after_sigkill_and_are_reproducible_from_their_seed(onsets):
    out, at_kill, root = onsets
    assert at_kill < PEOPLE
    meta = read_meta(out)
    assert meta["sequences"] == PEOPLE * PER_PERSON
    people = meta["splits"]
    assert not set(people["train"]) & set(people["test"])  # split by person
    assert "synthetic people, not people" in (out / "README.md").read_text()
    again = root / "again"
    record_synthetic("x2c30", 2, again, per_person=PER_PERSON, seed=3, progress=False)
    for k in range(2):
        a = pq.read_table(out / "shards" / f"person-{k:06d}.parquet").to_pylist()
        b = pq.read_table(again / "shards" / f"person-{k:06d}.parquet").to_pylist()
        assert a == b


@pytest.fixture(scope="module")
def predictor(onsets, tmp_path_factory):
    out = tmp_path_factory.mktemp("predictor")
    train_predictor(onsets[0], out, steps=2000, hidden=256, progress=False)
    return out


def test_the_predictive_model_beats_mimicry_and_random(onsets, predictor):
    result = evaluate_predictor(predictor, onsets[0])
    mae = result["mae_px"]
    assert result["sequences"] >= 5
    assert mae["predictor"] < mae["mimicry"] < mae["random"], mae
    assert result["lead_ms"]["median"] > 0


def test_a_damaged_predictor_is_named(predictor, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "predictor.json").write_bytes((predictor / "predictor.json").read_bytes())
    data = (predictor / "predictor.safetensors").read_bytes()
    (broken / "predictor.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(PredictorError, match="predictor.safetensors is damaged"):
        load_predictor(broken)


@pytest.mark.subprocess
def test_coexpression_on_the_serial_bus_runs_a_clip_to_the_end_with_safe_commands(
        model, predictor, person, tmp_path):
    _, _, frames = film(person, Performance("happiness", None, 1.0, 1.0, 0.7, 0.9, 0.6, False,
                                            STILL_HEAD), 5, FPS, NOISE,
                        np.random.default_rng(2), images=True)
    clip = tmp_path / "person.mp4"
    iio.imwrite(clip, np.array(frames), fps=FPS, macro_block_size=1)
    link = tmp_path / "face"
    out, journal = tmp_path / "out", tmp_path / "journal.jsonl"
    with virtual_bus("emo11", link, plant=True):
        run = subprocess.run(
            facetwin_command("coexpress", "--profile", "emo11", "--inverse", str(model[0]),
                             "--predictor", str(predictor), "--source", str(clip),
                             "--out", str(out), "--backend", "serial", "--port", str(link),
                             "--camera", f"{link}.png", "--journal", str(journal),
                             "--no-preview"),
            capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(frames) and not summary["interrupted"]
    onset = summary["onsets"][-1]  # the expression was acted on, toward a later peak
    assert onset["predicted_peak"] > onset["time"]
    assert len(iio.imread(out / "coexpression.mp4")) == len(frames)
    assert "person peaked at" in run.stdout
    p = profiles.load("emo11")
    envelope = load_envelope(p)
    _, records, torn = read_journal(journal)
    sent = [np.array(r["applied"]) for r in records if r["kind"] == "command"]
    assert torn == 0 and len(sent) >= summary["frames"]
    for applied in sent:
        assert np.all(applied >= p.low - 1e-9) and np.all(applied <= p.high + 1e-9)
        assert envelope.predict(p.normalise(applied)) <= envelope.ceiling + 1e-9
    assert records[-1]["kind"] == "torque" and records[-1]["on"] is False
