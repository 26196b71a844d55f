"""The main job and the expression tour.

``facetwin demo``: the twin's face tuned by Bayesian optimisation to mimic the astronaut
portrait that ships with scikit-image, shown beside the portrait and the convergence.
``facetwin expressions``: a profile's expression library, as a video and a contact sheet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image
from tqdm import tqdm

from facetwin.envs.face_env import FaceTwinEnv
from facetwin.figures import grid, labelled, row, save_png
from facetwin.files import claim_output


def library_schedule(library: dict[str, np.ndarray], fps: float, transition_s: float,
                     hold_s: float) -> list[tuple[str, np.ndarray, bool]]:
    """A performance of an expression library, one entry per video frame: the expression
    the face is on or moving to, the controls, and whether the frame ends its hold. The
    face rests at neutral, eases into each expression in turn and holds it, and returns
    to neutral."""
    names = [n for n in library if n != "neutral"] + ["neutral"]
    n_move, n_hold = max(1, round(transition_s * fps)), max(1, round(hold_s * fps))
    current = library["neutral"].astype(float)
    frames = [("neutral", current, k == n_hold - 1) for k in range(n_hold)]
    for name in names:
        goal = library[name].astype(float)
        for k in range(1, n_move + n_hold + 1):
            blend = 0.5 - 0.5 * np.cos(np.pi * min(1.0, k / n_move))  # ease in and out
            frames.append((name, current + blend * (goal - current), k == n_move + n_hold))
        current = goal
    return frames


@dataclass
class Tour:
    video: Path
    sheet: Path
    readings: dict[str, np.ndarray]  # each expression's seven emotion probabilities


def run_demo(profile: str, out: Path, size: int = 256, fps: int = 25,
             transition_s: float = 0.8, hold_s: float = 0.6) -> Tour:
    """Perform ``profile``'s library on the twin: a video, and a contact sheet of each
    expression held, labelled with what an emotion recogniser reads in it."""
    with claim_output(out):
        return _tour(profile, Path(out), size, fps, transition_s, hold_s)


def _tour(profile, out, size, fps, transition_s, hold_s) -> Tour:
    from facetwin.envs.emotion import EMOTIONS, EmotionReader

    reader = EmotionReader()
    # Each video frame is one control period: 1/fps seconds of physics.
    env = FaceTwinEnv(profile, image_size=size, step_mode="period", control_rate_hz=fps)
    frames = library_schedule(env.profile.expressions, fps, transition_s, hold_s)
    video = out / f"{env.profile.name}_expressions.mp4"
    tiles, readings = [], {}

    def hold(name: str, seen: dict) -> None:
        p = readings[name] = reader(seen["image"], seen["landmarks"])
        top = int(np.argmax(p))
        tiles.append(labelled(seen["image"], f"{name}: reads {EMOTIONS[top]} {p[top]:.2f}",
                              seen["landmarks"]))

    obs, _ = env.reset(seed=0, options={"target": "neutral"})
    hold("neutral", obs)
    with imageio.get_writer(video, fps=fps, macro_block_size=1) as writer:
        for name, controls, held in tqdm(frames, unit="frame", desc=f"demo {env.profile.name}"):
            obs, *_ = env.step(controls)
            writer.append_data(obs["image"])
            if held and name != "neutral":
                env.act(controls, "settle")  # held: the face at rest at it
                hold(name, env.observe())
    sheet_path = out / f"{env.profile.name}_contact_sheet.png"
    save_png(sheet_path, grid(tiles))
    env.close()
    return Tour(video, sheet_path, readings)


@dataclass
class Mimicked:
    """What the astronaut demo made and measured."""

    sheet: Path  # portrait | her photo relaxed | twin at rest | one shot | refined | plot
    library: Path  # the refined face, as a library entry
    one_shot_mm: float  # the inverse model's face: expression distance to hers
    refined_mm: float  # after the optimisation
    evaluations: int
    readings: dict[str, str]  # what the emotion recogniser reads in each face


def mimic_astronaut(profile: str, out: Path, budget: int = 30, workers: int = 2,
                    samples: int = 2048) -> Mimicked:
    """Tune ``profile``'s face to mimic ``skimage.data.astronaut()``: a babbling dataset
    and an inverse model on MediaPipe features (both kept in ``out`` and reused), the
    model's one-shot face, then Bayesian optimisation from it, her smile measured from her
    photo relaxed the way the twin's rest face was. Returns the sheet (portrait | her
    photo relaxed | the twin at rest | the model's face | the refined face |
    convergence), each face labelled with what the emotion recogniser reads in it."""
    from skimage.data import astronaut

    from facetwin.agents.inverse.collect import collect
    from facetwin.assets.make_face import relaxed_portrait
    from facetwin.agents.inverse.train import train
    from facetwin.agents.optimize.tune import tune

    out = Path(out)
    data, model = out / "data", out / "model"
    collect(profile, "babble", samples, data, workers=workers, images=False)
    if not (model / "model.json").exists():
        train("mlp", data, model, features="mediapipe")
    from facetwin.envs.emotion import EMOTIONS, EmotionReader

    portrait = astronaut()
    # She has no picture at rest; her photo relaxed as the twin's face was stands in, so
    # that her smile, not her face's shape, is the expression to mimic.
    at_rest = relaxed_portrait(portrait)
    tuned = tune(profile, portrait, out, name="astronaut", budget=budget, workers=workers,
                 init_model=model, target_neutral=at_rest)
    records = tuned.runs[0].records
    reader = EmotionReader()

    def reads(image: np.ndarray) -> str:
        p = reader(image)
        return "no face found" if p is None else \
            f"reads {EMOTIONS[int(p.argmax())]} {p.max():.2f}"

    pictures = {"portrait": portrait, "at rest": at_rest,
                **{k: np.asarray(Image.open(v).convert("RGB")) for k, v
                   in (("before", tuned.before), ("model", tuned.model),
                       ("after", tuned.after))}}
    readings = {k: reads(v) for k, v in pictures.items()}
    height = 360
    faces = [(Image.fromarray(portrait), f"portrait (skimage astronaut), "
                                         f"{readings['portrait']}"),
             (Image.fromarray(at_rest), "her photo relaxed: her at rest"),
             (Image.fromarray(pictures["before"]), f"the twin at rest, {readings['before']}"),
             (Image.open(tuned.model), f"model's one shot: {-records[0]['score']:.2f} mm, "
                                       f"{readings['model']}"),
             (Image.open(tuned.after), f"then {len(records)} evaluations of BO: "
                                       f"{-tuned.best['score']:.2f} mm, {readings['after']}")]
    tiles = [labelled(im.convert("RGB").resize((height, height), Image.LANCZOS), label)
             for im, label in faces]
    tiles.append(Image.open(tuned.convergence).convert("RGB"))
    return Mimicked(save_png(out / "astronaut_side_by_side.png", row(tiles)), tuned.library,
                    -records[0]["score"], -tuned.best["score"], len(records), readings)
