"""Design a profile's six library expressions from their facial actions.

Each emotion is the set of FACS action units that people show it with (Ekman &
Friesen's prototypes, as the issue lists them: happiness 6+12, sadness 1+4+15, surprise
1+2+5+26, fear 1+2+4+5+20+26, anger 4+5+7+23, disgust 9+15+16), realised with the
controls a profile has for each unit, each moved only in its unit's direction
(``ACTIONS``). How far each moves is then chosen by CMA-ES so that an emotion
recogniser nobody here trained (``facetwin.envs.emotion``) reads the face as that
emotion by the widest margin over the next (the log of the ratio of their
probabilities), through the env, its safety filter and strain envelope included. What
the library keeps is what the filter applied, rounded, and eased toward neutral until
the filter lets it through unchanged.

    python -m facetwin.assets.design_expressions --profile x2c30 [--write]

prints each expression's controls and reading; ``--write`` replaces the profile's
``[expressions.*]`` tables (then recompute its envelope: the profile's hash changed).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

# Per profile and emotion: (controls moved together, low, high) in normalised units
# (-1 .. 1 about neutral), each group one action unit's direction.
ACTIONS: dict[str, dict[str, list[tuple[str, float, float]]]] = {
    "x2c30": {
        "happiness": [  # AU6 (lower lids up), AU12 (corners up and out), AU10 + AU25 (teeth)
            ("lip_corner_raise_left lip_corner_raise_right", 0, 1),
            ("lip_corner_stretch_left lip_corner_stretch_right", 0, 1),
            ("eyelid_lower_left eyelid_lower_right", -1, 0),
            ("lip_top_raise_left lip_top_raise_right lip_top_raise_middle", 0, 1),
            ("lip_bottom_depress_left lip_bottom_depress_right lip_bottom_depress_middle", 0, 1),
            ("jaw_pitch", -0.3, 0)],
        "sadness": [  # AU1 (inner brows up), AU4 (brows down), AU15, AU17, lids and gaze down
            ("brow_inner_left brow_inner_right", 0, 1),
            ("brow_outer_left brow_outer_right", -1, 0),
            ("lip_corner_raise_left lip_corner_raise_right", -1, 0),
            ("lip_bottom_depress_middle", -1, 0),
            ("eyelid_upper_left eyelid_upper_right", -0.6, 0),
            ("gaze_target_theta", -1, 0)],
        "surprise": [  # AU1, AU2, AU5 (upper lids up), AU26 (jaw drops)
            ("brow_inner_left brow_inner_right", 0, 1),
            ("brow_outer_left brow_outer_right", 0, 1),
            ("eyelid_upper_left eyelid_upper_right", 0, 1),
            ("eyelid_lower_left eyelid_lower_right", 0, 1),
            ("jaw_pitch", -1, 0)],
        "fear": [  # AU1, AU2 with AU4, AU5, AU20 (lips stretched), AU26
            ("brow_inner_left brow_inner_right", 0, 1),
            ("brow_outer_left brow_outer_right", -0.5, 1),
            ("eyelid_upper_left eyelid_upper_right", 0, 1),
            ("lip_corner_stretch_left lip_corner_stretch_right", 0, 1),
            ("lip_corner_raise_left lip_corner_raise_right", -1, 0),
            ("lip_bottom_depress_left lip_bottom_depress_right lip_bottom_depress_middle", 0, 1),
            ("jaw_pitch", -1, 0)],
        "anger": [  # AU4, AU5, AU7 (lower lids up), AU23 (lips narrowed), AU24 (pressed)
            ("brow_inner_left brow_inner_right", -1, 0),
            ("brow_outer_left brow_outer_right", -1, 0.5),
            ("eyelid_upper_left eyelid_upper_right", 0, 1),
            ("eyelid_lower_left eyelid_lower_right", -1, 0),
            ("lip_corner_stretch_left lip_corner_stretch_right", -1, 0),
            ("lip_bottom_depress_left lip_bottom_depress_right lip_bottom_depress_middle", -1, 0),
            ("nose_wrinkle", 0, 0.5)],
        "disgust": [  # AU9 (nose), AU10 (upper lip), AU15, AU16 (lower lip down), AU4, AU7
            ("nose_wrinkle", 0, 1),
            ("lip_top_raise_left lip_top_raise_right lip_top_raise_middle", 0, 1),
            ("lip_corner_raise_left lip_corner_raise_right", -1, 0),
            ("lip_bottom_depress_left lip_bottom_depress_right lip_bottom_depress_middle", 0, 1),
            ("lip_top_curl", 0, 1),
            ("brow_inner_left brow_inner_right", -1, 0),
            ("brow_outer_left brow_outer_right", -1, 0),
            ("eyelid_lower_left eyelid_lower_right", -1, 0),
            ("eyelid_upper_left eyelid_upper_right", -0.5, 0),
            ("jaw_pitch", -0.3, 0)],
    },
    "emo11": {
        "happiness": [
            ("mouth_corner_y", 0, 1), ("mouth_corner_x", 0, 1), ("lid_lower", 0, 1),
            ("lip_upper_side lip_upper_center", 0, 1),
            ("lip_lower_side lip_lower_center", 0, 1), ("jaw", 0, 0.3)],
        "sadness": [
            ("brow_inner", 0, 1), ("brow_outer", -1, 0), ("mouth_corner_y", -1, 0),
            ("lip_lower_center", -1, 0), ("lid_upper", -0.6, 0), ("gaze_pitch", -1, 0)],
        "surprise": [
            ("brow_inner", 0, 1), ("brow_outer", 0, 1), ("lid_upper", 0, 1),
            ("lid_lower", -1, 0), ("jaw", 0, 1)],
        "fear": [
            ("brow_inner", 0, 1), ("brow_outer", -0.5, 1), ("lid_upper", 0, 1),
            ("mouth_corner_x", 0, 1), ("mouth_corner_y", -1, 0),
            ("lip_lower_side lip_lower_center", 0, 1), ("jaw", 0, 1)],
        "anger": [
            ("brow_inner", -1, 0), ("brow_outer", -1, 0.5), ("lid_upper", 0, 1),
            ("lid_lower", 0, 1), ("mouth_corner_x", -1, 0),
            ("lip_lower_side lip_lower_center", -1, 0), ("lip_upper_side", 0, 0.5)],
        "disgust": [  # no nose wrinkler: AU10, AU15, AU16, AU4, AU7
            ("lip_upper_side lip_upper_center", 0, 1), ("mouth_corner_y", -1, 0),
            ("lip_lower_side lip_lower_center", 0, 1), ("brow_inner", -1, 0),
            ("brow_outer", -1, 0), ("lid_lower", 0, 1), ("lid_upper", -0.5, 0), ("jaw", 0, 0.3)],
    },
    "rena25": {
        "happiness": [
            ("smile_left smile_right", 0, 1), ("eye_open_left eye_open_right", -1, 0),
            ("lip_upper_left lip_upper_right", 0, 1), ("lip_lower_left lip_lower_right", 0, 1),
            ("jaw_open", 0, 0.3)],
        "sadness": [  # no inner-brow raiser, and AU4 without AU1 is anger's brow: none
            ("sad_left sad_right", 0, 1), ("blink_left blink_right", 0, 0.5),
            ("eye_pitch_left eye_pitch_right", -1, 0), ("lip_lower_left lip_lower_right", -1, 0),
            ("head_pitch", -1, 0)],
        "surprise": [  # no upper-lid raiser: the lower lids drop instead
            ("brow_raise_left brow_raise_right", 0, 1), ("eye_open_left eye_open_right", 0, 1),
            ("jaw_open", 0, 1)],
        "fear": [  # raised and frowning brows exclude each other: raised
            ("brow_raise_left brow_raise_right", 0, 1), ("eye_open_left eye_open_right", 0, 1),
            ("sad_left sad_right", 0, 1), ("lip_lower_left lip_lower_right", 0, 1),
            ("jaw_open", 0, 1)],
        "anger": [
            ("brow_frown_left brow_frown_right", 0, 1), ("eye_open_left eye_open_right", -1, 0),
            ("blink_left blink_right", 0, 0.3), ("lip_lower_left lip_lower_right", -1, 0),
            ("lip_upper_left lip_upper_right", 0, 0.5)],
        "disgust": [  # no nose wrinkler: AU10, AU15, AU16, AU4, AU7, and the head's
            # turning up and away from what disgusts (AU53, AU51)
            ("lip_upper_left lip_upper_right", 0, 1), ("sad_left sad_right", 0, 1),
            ("lip_lower_left lip_lower_right", 0, 1), ("brow_frown_left brow_frown_right", 0, 1),
            ("eye_open_left eye_open_right", -1, 0), ("jaw_open", 0, 0.3),
            ("head_pitch", 0, 1), ("head_yaw", 0, 1)],
    },
}


# What a profile's hardware cannot show, and why (README, tests/test_emotion.py).
CANNOT_SHOW: dict[str, dict[str, str]] = {
    "rena25": {"sadness": "Rena's brows have a raiser and a frowner, no inner-brow raiser "
                          "(AU1); a frown alone (AU4) reads as anger, and a sad mouth with "
                          "drooping lids and downcast eyes, without the brows, is not read "
                          "as sad"},
}


def design(profile: str, emotion: str, evaluations: int = 200, seed: int = 1,
           progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The applied controls of the best face found for ``emotion`` (a library name), and
    the recogniser's seven probabilities of it."""
    import cma
    from tqdm import tqdm

    from facetwin.envs.emotion import EmotionReader, emotion_index
    from facetwin.envs.face_env import FaceTwinEnv

    env = FaceTwinEnv(profile)
    p, reader, k = env.profile, EmotionReader(), emotion_index(emotion)
    groups = [([p.names.index(n) for n in names.split()], lo, hi)
              for names, lo, hi in ACTIONS[p.name][emotion]]

    def controls(z: np.ndarray) -> np.ndarray:
        u = np.zeros(len(p.names))
        for (idx, lo, hi), v in zip(groups, np.clip(z, 0, 1)):
            u[idx] = lo + v * (hi - lo)
        return p.denormalise(u)

    def evaluate(z: np.ndarray):
        env.reset(seed=0, options={"target": "neutral"})
        obs, _, _, _, info = env.step(controls(z).astype(np.float32))
        prob = reader(obs["image"], obs["landmarks"])
        others = np.delete(prob, k).max()
        return np.log(prob[k] + 1e-6) - np.log(others + 1e-6), info["applied"], prob

    # Start with every action at 70% of its way.
    z0 = np.array([0.7 if abs(hi) >= abs(lo) else 0.3 for _, lo, hi in groups])
    es = cma.CMAEvolutionStrategy(z0, 0.3, {"bounds": [0, 1], "seed": seed, "verbose": -9,
                                            "popsize": 8})
    best = (-np.inf, None, None)
    with tqdm(total=evaluations, desc=f"{p.name} {emotion}", disable=not progress) as bar:
        while bar.n < evaluations:
            Z = es.ask()
            results = [evaluate(z) for z in Z]
            es.tell(Z, [-r[0] for r in results])
            best = max([best, *results], key=lambda r: r[0])
            bar.update(len(Z))
            bar.set_postfix(best=f"{best[2][k]:.2f}")
    env.close()
    return unchanged_by_the_filter(p, np.asarray(best[1], dtype=float)), best[2]


def unchanged_by_the_filter(profile, controls: np.ndarray) -> np.ndarray:
    """``controls`` rounded to two decimals and eased toward neutral, a per cent at a
    time, until the safety filter applies them as they are: a library expression is
    sent to the face unchanged."""
    from facetwin.envs.safety import SafetyFilter

    neutral = profile.neutral.astype(float)
    for k in range(100):
        u = np.round(neutral + (1 - 0.01 * k) * (controls - neutral), 2)
        _, report = SafetyFilter(profile).target(u)
        if not report.modified:
            return u
    raise RuntimeError(f"{profile.name}: no version of the expression passes the filter")


def expressions_toml(profile, designed: dict[str, np.ndarray]) -> str:
    """The ``[expressions.*]`` tables: every control away from neutral, two decimals."""
    lines = ["# The expression library: controls not named stay at neutral. Each is its",
             "# emotion's FACS action units, sized by facetwin.assets.design_expressions.", ""]
    for name, u in designed.items():
        lines.append(f"[expressions.{name}]")
        for c, value in zip(profile.controls, u):
            if round(float(value), 2) != round(float(c.neutral), 2):
                lines.append(f"{c.name} = {float(value):.2f}")
        lines.append("")
    return "\n".join(lines)


def write_expressions(path: Path, tables: str) -> None:
    """Replace everything from the profile's first expression table (and the comment
    right above it) with ``tables``."""
    text = Path(path).read_text()
    m = re.search(r"(?m)^(#[^\n]*\n)*\[expressions\.", text)
    head = text[:m.start()] if m else text.rstrip("\n") + "\n\n"
    Path(path).write_text(head + tables.rstrip("\n") + "\n")


def main() -> None:
    from facetwin import profile as profiles
    from facetwin.envs.emotion import EMOTIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, choices=sorted(ACTIONS))
    parser.add_argument("--evaluations", type=int, default=200)
    parser.add_argument("--emotions", nargs="+", help="design only these (library names); "
                                                       "the others stay as they are")
    parser.add_argument("--write", action="store_true", help="rewrite the profile's library")
    args = parser.parse_args()
    p = profiles.load(args.profile)
    designed = {name: u for name, u in p.expressions.items() if name != "neutral"}
    for emotion in args.emotions or ACTIONS[p.name]:
        u, prob = design(p.name, emotion, args.evaluations)
        designed[emotion] = u
        top = int(np.argmax(prob))
        print(f"{emotion:10s} reads {EMOTIONS[top]} {prob[top]:.2f}; "
              + " ".join(f"{e} {v:.2f}" for e, v in zip(EMOTIONS, prob)))
    tables = expressions_toml(p, designed)
    print(tables)
    if args.write:
        write_expressions(p.path, tables)
        print(f"wrote {p.path}; recompute its envelope: facetwin envelope --profile {p.name}")


if __name__ == "__main__":
    main()
