"""Why the twin settles as fast as it does: the slowest modes of each shipped profile's
face about its settled neutral, from MuJoCo's own one-step linearisation.

A mode decaying at r per second takes ln(v0 / 5 mm/s) / r to come under the settle
rule's landmark speed from a landmark speed v0 left by the ramp, so the slowest modes
that move landmarks far and fast bound the settle. Servo modes (most of their motion in
the joints) and skin modes (most in the skin's vertices) are listed apart: an eye's or
lid's mode moves landmarks at a lever of a centimetre, the skin's at one to one.
Each row names the degrees of freedom a mode moves most; the skin share is of the mode's
squared coordinates (metres for skin vertices, radians for joints).

    python bench/settle_modes.py [--modes 4]
"""

from __future__ import annotations

import argparse

import mujoco
import numpy as np

from facetwin import profile as profiles
from facetwin.sim.mjcf import critically_damp_servos
from facetwin.sim.twin import Twin


def linearised(twin: Twin) -> tuple[mujoco.MjModel, np.ndarray]:
    """The twin's model (with room for the finite differences) and its one-step
    transition matrix about the twin's present state. The tissue damping the twin
    applies as a force each step goes in as joint damping, which is the same force."""
    xml = twin.built.xml.replace("<option", '<size memory="256M"/>\n  <option', 1)
    model = mujoco.MjModel.from_xml_string(xml)
    critically_damp_servos(model)
    skin = np.array([model.joint(j).name.startswith("skin_") for j in model.dof_jntid])
    model.dof_damping[skin] += np.repeat(
        twin.skin.tissue_damping(twin.built.tether, twin.built.vertex_mass), 3)
    data = mujoco.MjData(model)
    data.qpos[:], data.ctrl[:] = twin.data.qpos, twin.data.ctrl
    mujoco.mj_forward(model, data)
    n = 2 * model.nv + model.na
    a = np.zeros((n, n))
    mujoco.mjd_transitionFD(model, data, 1e-6, True, a, None, None, None)
    return model, a


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=4, help="of each kind")
    args = parser.parse_args()
    print("| profile | mode | decay rate (1/s) | frequency (rad/s) | skin share | moves most |")
    print("|---|---|---|---|---|---|")
    for name in profiles.available():
        twin = Twin(profiles.load(name))
        twin.settle()
        model, a = linearised(twin)
        values, vectors = np.linalg.eig(a)
        continuous = np.log(values.astype(complex)) / model.opt.timestep
        names = [model.joint(j).name for j in model.dof_jntid]
        skin = np.array([n.startswith("skin_") for n in names])
        shown = {"servo": 0, "skin": 0}
        for k in np.argsort(-continuous.real):
            if continuous[k].imag < 0:
                continue  # one of each conjugate pair
            shape = np.abs(vectors[:model.nv, k]) ** 2
            share = shape[skin].sum() / shape.sum()
            kind = "skin" if share >= 0.5 else "servo"
            if shown[kind] == args.modes:
                continue
            shown[kind] += 1
            top = ", ".join(names[i] for i in np.argsort(-shape)[:3])
            print(f"| {name} | {kind} | {-continuous[k].real:.0f} | {continuous[k].imag:.0f} | "
                  f"{share:.2f} | {top} |")


if __name__ == "__main__":
    main()
