"""Agents: everything that acts on a face through an env, one subpackage per workflow.

    optimize/     search a face's controls for one expression: random search, CMA-ES,
                  Bayesian optimisation, the resumable harness, ``facetwin optimize``
    inverse/      learn controls from features: babbling strategies, collection,
                  datasets, the models, training, evaluation, the inverse-model agent
    mimic/        live mimicry: a person's face drives the robot's, frame by frame
    preference/   people's comparisons: pools, the annotation page, preference models,
                  preferential BO, simulated annotators

Beside them, what they share: the agent protocol (``protocol.py``), the evaluation
function (``evaluation.py``), the run log (``runlog.py``), the emotion objective, the
transfer to perturbed twins (``transfer.py``) and the built-in demo (``demo.py``).
Agents use an env's public API and its backend contract, never a twin's internals.
"""
