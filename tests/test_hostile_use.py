"""The newer commands under careless and hostile use (issue 25): nothing lost. Each test
is a finding of that issue, by its number."""

import json
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.agents.annotate_app import AnnotationServer
from facetwin.agents.answers import read_answers
from facetwin.agents.pool import PoolError, build_pool, load_pool
from facetwin.agents.tune import tune
from facetwin.files import claim_folder


@pytest.fixture(scope="module")
def built_pool(tmp_path_factory):
    return build_pool("emo11", "happiness", tmp_path_factory.mktemp("pools") / "happy",
                      size=6, image_size=96, progress=False)


@pytest.fixture
def pool(built_pool, tmp_path):
    return load_pool(shutil.copytree(built_pool.path, tmp_path / "happy"))


def _post(url: str, data: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(data).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _next(url: str, annotator: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/api/happy/next?annotator={annotator}",
                                timeout=30) as r:
        return json.loads(r.read())["pair"]


def test_1_a_second_server_on_a_pool_is_refused_while_the_first_serves(pool):
    with AnnotationServer([pool], port=0):
        with pytest.raises(PoolError, match="in use by another running process"):
            AnnotationServer([load_pool(pool.path)], port=0)
    with AnnotationServer([load_pool(pool.path)], port=0):  # free once the first ends
        pass


def test_2_a_pool_folder_being_built_is_refused_to_a_second_build(tmp_path):
    out = tmp_path / "race"
    with claim_folder(out, "pool folder", PoolError):  # another run building it
        with pytest.raises(PoolError, match="in use by another running process"):
            build_pool("emo11", "surprise", out, size=2, progress=False)
    assert not (out / "pool.json").exists()


# 3: tests/test_preference.py::test_the_full_loop_beats_the_library_face


def test_5_a_resumed_run_with_a_smaller_budget_keeps_what_the_longer_run_found(tmp_path):
    out = tmp_path / "run"
    longer = tune("emo11", "happiness", out, methods=("random",), budget=8,
                  image_size=64, progress=False)
    again = tune("emo11", "happiness", out, methods=("random",), budget=3,
                 image_size=64, progress=False)
    assert len(again.runs[0].records) == 8
    assert again.best["score"] == longer.best["score"]
    kept = json.loads((out / "library.json").read_text())["expressions"]["happiness"]
    names = profiles.load("emo11").names
    assert np.allclose([kept[n] for n in names], longer.best["applied"])


def test_7_an_answer_counts_once_and_only_for_a_pair_that_was_asked(pool):
    with AnnotationServer([pool], port=0) as server:
        api = f"{server.url}/api/happy"
        pair = _next(server.url, "ana")
        # Twenty posts of the one pair at once: one is logged.
        codes = []

        def post(answer):
            codes.append(_post(f"{api}/answer", {"annotator": "ana", "pair": pair,
                                                 "answer": answer})[0])

        threads = [threading.Thread(target=post, args=("left" if k % 2 else "right",))
                   for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200] + [409] * 19
        unasked = [i for i in pool.ids if i not in _next(server.url, "ana")][:2]
        code, reply = _post(f"{api}/answer", {"annotator": "ana", "pair": unasked,
                                              "answer": "left"})
        assert code == 409 and "was not asked of ana" in reply["error"]
        code, _ = _post(f"{api}/undo", {"annotator": "ana"})
        assert code == 200  # after an undo the pair may be answered again
        assert _post(f"{api}/answer", {"annotator": "ana", "pair": pair,
                                       "answer": "tie"})[0] == 200
    assert [r["answer"] for r in read_answers(pool.path / "answers.jsonl")] == ["tie"]


def test_4_a_killed_pool_build_is_no_pool_and_resumes_its_renders(tmp_path, built_pool):
    """Killed while rendering: no pool.json to serve; run again, it renders only what
    was missing and makes the pool an uninterrupted build makes."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import wait_until

    out = tmp_path / "killed"
    script = ("from facetwin.agents.pool import build_pool; "
              f"build_pool('emo11', 'happiness', {str(out)!r}, size=6, image_size=96, "
              "progress=False)")
    child = subprocess.Popen([sys.executable, "-c", script])
    log = out / "candidates" / "renders.jsonl"
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 6,
               timeout_s=300, what="six renders")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (out / "pool.json").exists()
    with pytest.raises(PoolError, match="not a FaceTwin pool"):
        load_pool(out)
    kept = len(log.read_text().splitlines()) - 1
    resumed = build_pool("emo11", "happiness", out, size=6, image_size=96, progress=False)
    assert 5 <= kept < 24 and not (out / "candidates").exists()
    assert np.array_equal(resumed.controls, built_pool.controls)
    assert np.array_equal(resumed.features, built_pool.features)


def test_6_preferential_optimisation_resumes_from_the_comparisons_people_made(tmp_path):
    """Stopped after five comparisons and run again for seven: the five are not asked
    again, and the result is an uninterrupted seven's."""
    from facetwin.agents.preferential_bo import ComparisonLogError, preferential_bo
    from facetwin.agents.simulated_annotator import SimulatedAnnotator, hidden_target
    from facetwin.envs.face_env import FaceTwinEnv

    p = profiles.load("emo11")
    env = FaceTwinEnv(p, image_size=48)
    person = SimulatedAnnotator(env.features_of(hidden_target(p, "happiness")), noise_mm=0)
    asked = []

    def compare(left, right):
        asked.append(1)
        return person.answer(left["features"], right["features"])

    try:
        whole = preferential_bo(env, "happiness", compare, budget=7, progress=False,
                                log_path=tmp_path / "whole.jsonl")
        preferential_bo(env, "happiness", compare, budget=5, progress=False,
                        log_path=tmp_path / "resumed.jsonl")
        asked.clear()
        resumed = preferential_bo(env, "happiness", compare, budget=7, progress=False,
                                  log_path=tmp_path / "resumed.jsonl")
        assert len(asked) == 2 and resumed["comparisons"] == 7
        assert np.array_equal(resumed["controls"], whole["controls"])
        again = preferential_bo(env, "happiness", compare, budget=3, progress=False,
                                log_path=tmp_path / "resumed.jsonl")
        assert len(asked) == 2 and again["comparisons"] == 7  # a smaller budget keeps all
        with pytest.raises(ComparisonLogError, match="another search"):
            preferential_bo(env, "surprise", compare, budget=3, progress=False,
                            log_path=tmp_path / "resumed.jsonl")
    finally:
        env.close()
    lines = (tmp_path / "resumed.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 7  # the header and each comparison once
