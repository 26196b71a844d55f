"""``facetwin pool``, ``annotate``, ``fit-preference`` and ``optimize --preferential``:
learning an expression from people's comparisons."""

from __future__ import annotations

import argparse
from pathlib import Path

from facetwin.cli.arguments import IMAGE_SIZE, PORT, PROFILE, SEEDED, count


def register(sub) -> None:
    pool = sub.add_parser("pool", parents=[PROFILE, SEEDED],
                          help="render a diverse pool of faces for one expression, for "
                               "people to compare")
    pool.add_argument("--expression", required=True, help="an expression of the library")
    pool.add_argument("--size", type=count(2, 10_000), default=100,
                      help="faces in the pool (default 100)")
    pool.add_argument("--source", choices=["random", "runs", "dataset"], default="random",
                      help="candidates: random safe commands about the expression, the "
                           "evaluations of optimisation runs, or a dataset")
    pool.add_argument("--source-path", type=Path,
                      help="the runs' folder (--source runs) or the dataset (--source dataset)")
    pool.add_argument("--image-size", type=IMAGE_SIZE, default=256)
    pool.add_argument("--out", type=Path, required=True, help="the pool's folder")
    pool.set_defaults(func=_pool)

    ann = sub.add_parser("annotate", help="serve the pairwise annotation page for pools")
    ann.add_argument("--pool", type=Path, action="append", required=True,
                     help="a pool folder (repeat for several)")
    ann.add_argument("--strategy", choices=["mergesort", "active"], default="mergesort",
                     help="pair order: HAPI's merge sort, or the most informative pair")
    ann.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: this machine only)")
    ann.add_argument("--port", type=PORT, default=8000)
    ann.set_defaults(func=_annotate)

    fit = sub.add_parser("fit-preference", parents=[SEEDED],
                         help="learn a preference score from the answers")
    fit.add_argument("--pool", type=Path, required=True)
    fit.add_argument("--answers", type=Path, help="answer log (default: POOL/answers.jsonl)")
    fit.add_argument("--model", default="ranknet",
                     choices=["ranknet", "ranknet-image", "ranknet-fer", "pairwise-gp"])
    fit.add_argument("--folds", type=count(1, 50), default=5,
                     help="cross-validation folds (1: none)")
    fit.add_argument("--epochs", type=count(1, 100_000), default=300)
    fit.add_argument("--out", type=Path, required=True, help="the model's folder")
    fit.set_defaults(func=_fit_preference)


def _pool(args: argparse.Namespace) -> int:
    from facetwin.agents.preference.pool import build_pool

    pool = build_pool(args.profile, args.expression, args.out, size=args.size,
                      source=args.source, source_path=args.source_path, seed=args.seed,
                      image_size=args.image_size)
    print(f"{args.out}: {len(pool)} faces for {pool.question!r}")
    print(f"next: facetwin annotate --pool {args.out}")
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from facetwin.agents.preference.server import AnnotationServer
    from facetwin.agents.preference.pool import load_pool

    server = AnnotationServer([load_pool(p) for p in args.pool], strategy=args.strategy,
                              host=args.host, port=args.port)
    names = ", ".join(f"{server.url}/pool/{n}" for n in server.sessions)
    print(f"annotating on {names} ({args.strategy}); answers in "
          + ", ".join(str(s.log.path) for s in server.sessions.values()))
    print("stop with Ctrl-C: every answer is already on disk, a restart resumes")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _fit_preference(args: argparse.Namespace) -> int:
    from facetwin.agents.preference.answers import read_answers
    from facetwin.agents.preference.pool import load_pool
    from facetwin.agents.preference.fit import fit_preference

    pool = load_pool(args.pool)
    answers = read_answers(args.answers or args.pool / "answers.jsonl")
    info = fit_preference(pool, answers, args.out, kind=args.model, folds=args.folds,
                          epochs=args.epochs, seed=args.seed)
    cv = info["cv_accuracy_mean"]
    print(f"{args.model}: {info['answers']} answers from {len(info['annotators'])} "
          f"annotator(s); {args.folds}-fold held-out pair accuracy "
          + (f"{cv:.3f} (folds {info['cv_accuracy']})" if cv is not None else "not measured")
          + f"; training accuracy {info['train_accuracy']:.3f}")
    if info["kendall_tau"]:
        print("Kendall's tau against each annotator's ranking: "
              + ", ".join(f"{k} {v:.3f}" for k, v in info["kendall_tau"].items()))
    print(f"wrote {args.out / 'preference.safetensors'}, {args.out / 'preference.json'}")
    print(f"next: facetwin optimize --profile {pool.profile} --target {pool.expression} "
          f"--preference {args.out} --out OUT")
    return 0


def optimize_preferential(args: argparse.Namespace) -> int:
    """Preferential BO with people answering on the annotation page as it goes."""
    from facetwin import profile as profiles
    from facetwin.agents.preference.server import AnnotationServer
    from facetwin.agents.preference.pool import new_pool
    from facetwin.agents.preference.bo import N_SOBOL, preferential_bo
    from facetwin.envs.face_env import FaceTwinEnv
    from facetwin.files import OutputError, claim_output
    from facetwin.library import save_library

    if args.budget < N_SOBOL:
        raise OutputError(f"preferential BO needs a --budget of at least {N_SOBOL} "
                          "comparisons")
    p = profiles.load(args.profile)
    with claim_output(args.out):
        env = FaceTwinEnv(p, image_size=256)
        pool = new_pool(p, args.target, args.out / "asked", image_size=256)
        server = AnnotationServer([pool], strategy="asked", host=args.host,
                                  port=args.port).start()
        session = server.sessions[pool.path.name]
        print(f"preferential BO: answer on {server.url}/pool/{pool.path.name}")
        try:
            best = preferential_bo(env, args.target, session.compare, args.budget,
                                   seed=args.seed,
                                   log_path=args.out / "comparisons.jsonl")
        finally:
            server.close()
            env.close()
        library = save_library(args.out / "library.json", p, {args.name or args.target:
                                                             best["applied"]})
    print(f"best face after {best['comparisons']} comparisons; wrote {library}")
    return 0
