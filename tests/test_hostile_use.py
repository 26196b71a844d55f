"""The newer commands under careless and hostile use (issue 25): nothing lost. Each test
is a finding of that issue, by its number."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from facetwin import profile as profiles
from facetwin.agents.preference.server import AnnotationServer
from facetwin.agents.preference.answers import read_answers
from facetwin.agents.preference.pool import PoolError, build_pool, load_pool
from facetwin.agents.optimize.tune import tune
from facetwin.files import claim_folder

pytestmark = pytest.mark.slow  # the whole module: see the README's test loop


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


# 3: tests/agents/preference/test_preference.py::test_the_full_loop_beats_the_library_face


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


@pytest.mark.subprocess
def test_4_a_killed_pool_build_is_no_pool_and_resumes_its_renders(tmp_path, built_pool):
    """Killed while rendering: no pool.json to serve; run again, it renders only what
    was missing and makes the pool an uninterrupted build makes."""
    from helpers import wait_until

    out = tmp_path / "killed"
    script = ("from facetwin.agents.preference.pool import build_pool; "
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
    from facetwin.agents.preference.bo import ComparisonLogError, preferential_bo
    from facetwin.agents.preference.annotators import SimulatedAnnotator, hidden_target
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


# -- left running, or unbounded -------------------------------------------------------

def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        kids = [k for p in frontier for k in _children(p)]
        found += kids
        frontier = kids
    return found


def _loaded_workers(pid: int) -> list[int]:
    """The command's worker processes (multiprocessing's, or Ray's below its raylet) that
    have imported their twin (RSS > 150 MB)."""
    workers = []
    for k in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{k}/cmdline").read_bytes()
            if b"spawn_main" not in cmdline and not cmdline.startswith(b"ray::_Host"):
                continue
            status = Path(f"/proc/{k}/status").read_text()
        except OSError:
            continue
        rss_kb = int(next(line.split()[1] for line in status.splitlines()
                          if line.startswith("VmRSS")))
        if rss_kb > 150_000:
            workers.append(k)
    return workers


@pytest.mark.subprocess
@pytest.mark.parametrize("command, sig", [
    (["collect", "--profile", "emo11", "--samples", "4096", "--workers", "2",
      "--no-images"], signal.SIGKILL),
    (["optimize", "--profile", "emo11", "--target", "happiness", "--budget", "400",
      "--workers", "2"], signal.SIGTERM),
], ids=["collect-SIGKILL", "optimize-SIGTERM"])
def test_8_workers_end_with_their_command_however_it_ends(tmp_path, command, sig):
    """Counted in /proc: the command's worker processes (twin loaded), each gone once
    the command is killed."""
    from helpers import wait_until

    child = subprocess.Popen([sys.executable, "-m", "facetwin.cli", *command,
                              "--out", str(tmp_path / "out")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []

    def two_loaded():
        workers[:] = _loaded_workers(child.pid)
        return len(workers) == 2

    try:
        wait_until(two_loaded, timeout_s=300, what="two workers with their twin")
    finally:
        os.kill(child.pid, sig)
        child.wait()
    wait_until(lambda: not any(_alive(k) for k in workers), timeout_s=60,
               what="the workers' end")


@pytest.mark.parametrize("argv, complaint", [
    (["optimize", "--target", "happiness", "--workers", "1000", "--out", "o"],
     "--workers: 1000 is outside 1..[0-9]+"),
    (["collect", "--samples", "10", "--workers", "0", "--out", "o"], "--workers: 0 is outside"),
    (["train", "--model", "cnn", "--data", "d", "--out", "o", "--image-size", "20000"],
     "--image-size: 20000 is outside 16..256"),
    (["mimic", "--model", "m", "--source", "s.png", "--fps", "1e6"],
     "--fps: 1e\\+06 is not above 0 to 240"),
    (["calibrate", "--profile", "rena25", "--port", "p", "--seconds", "inf"],
     "--seconds: inf is not above 0 to 3600"),
    (["expressions", "--hold", "1e9"], "--hold: 1e\\+09 is not from 0 to 60"),
    (["pool", "--expression", "happiness", "--size", "1000000000", "--out", "o"],
     "--size: 1000000000 is outside 2..10000"),
])
def test_9_every_size_and_rate_has_a_bound(argv, complaint, capsys):
    from facetwin.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"facetwin: {argv[0]}: ")
    assert re.search(complaint, err), err


@pytest.mark.subprocess
def test_9_a_model_file_asking_for_gigabytes_is_refused_before_any_is_allocated(
        dataset, tmp_path):
    from facetwin.agents.inverse.store import ModelError, load_model
    from facetwin.agents.inverse.train import train

    model = tmp_path / "mlp"
    train("mlp", dataset[0], model, epochs=1, progress=False)
    config = json.loads((model / "model.json").read_text())
    config["architecture"]["hidden"] = [1_000_000, 1_000_000]  # 4 TB of weights
    (model / "model.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="does not fit the architecture"):
        load_model(model, profiles.load("emo11"))


def test_10_the_server_refuses_big_bodies_deep_json_and_foreign_hosts(pool):
    import http.client

    with AnnotationServer([pool], port=0) as server:
        api = f"{server.url}/api/happy"
        code, reply = _post(f"{api}/answer", {"annotator": "ana", "pad": "x" * 200_000})
        assert code == 413
        req = urllib.request.Request(f"{api}/answer", b"[" * 50_000 + b"]" * 50_000,
                                     {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as deep:
            urllib.request.urlopen(req, timeout=30)
        assert deep.value.code == 413
        nested = b'{"annotator": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
        req = urllib.request.Request(f"{api}/answer", nested,
                                     {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as deep:
            urllib.request.urlopen(req, timeout=30)
        assert deep.value.code == 400
        port = server.url.rsplit(":", 1)[1]
        for host, status in ((f"evil.example:{port}", 403), (f"localhost:{port}", 200),
                             (f"127.0.0.1:{port}", 200)):
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            conn.request("GET", "/api/pools", headers={"Host": host})
            assert conn.getresponse().status == status, host
            conn.close()


# -- broken as the README says to use it ----------------------------------------------

def test_11_a_relative_pool_folder_serves_its_images(pool, monkeypatch):
    monkeypatch.chdir(pool.path.parent)
    relative = load_pool(Path(pool.path.name))
    with AnnotationServer([relative], port=0) as server:
        face = relative.ids[0]
        with urllib.request.urlopen(f"{server.url}/api/happy/image/{face}.png",
                                    timeout=30) as r:
            assert r.status == 200 and r.read()[:4] == b"\x89PNG"


def test_12_the_readme_says_what_the_commands_do(tmp_path):
    import imageio.v3 as iio
    from skimage.data import astronaut

    from facetwin.agents.mimic.sources import open_source

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "agent.evaluate()" not in readme and 'agent.evaluate("happiness")' in readme
    assert "`calibrate` on the virtual bus" in readme
    picture = tmp_path / "face.png"
    iio.imwrite(picture, astronaut())
    assert open_source(picture).still  # mimicry takes the robot's neutral for it


@pytest.mark.subprocess
def test_12_a_rounded_up_collection_says_so(dataset, capsys):
    from facetwin.cli import main

    # The dataset holds its 256 samples: asking for 200 adds nothing, and says why.
    assert main(["collect", "--profile", "emo11", "--strategy", "babble", "--samples",
                 "200", "--out", str(dataset[0])]) == 0
    assert "--samples 200 rounded up to whole shards of 128" in capsys.readouterr().out


# -- one line where there was a traceback ---------------------------------------------

def _flip_in_column(shard: Path, column: str) -> None:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(shard).metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    chunk = meta.row_group(0).column(next(i for i, n in enumerate(names)
                                          if n.startswith(column)))
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else \
        chunk.data_page_offset
    at = start + chunk.total_compressed_size // 2
    data = bytearray(shard.read_bytes())
    data[at] ^= 0x10
    shard.write_bytes(bytes(data))


DAMAGE = {
    "truncated": lambda f: f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2]),
    "garbage": lambda f: f.write_bytes(np.random.default_rng(0).bytes(4096)),
    "empty": lambda f: f.write_bytes(b""),
    "bit-flipped": lambda f: _flip_in_column(f, "applied"),
}


def _copy_dataset(dataset, to: Path) -> Path:
    return shutil.copytree(dataset[0], to, ignore=shutil.ignore_patterns(".facetwin.lock"))


@pytest.mark.subprocess
@pytest.mark.parametrize("damage", DAMAGE)
def test_13_a_damaged_shard_is_named_in_one_line(dataset, tmp_path, damage, capsys):
    from facetwin.cli import main

    data = _copy_dataset(dataset, tmp_path / "data")
    shard = sorted((data / "shards").glob("seq-*.parquet"))[0]
    DAMAGE[damage](shard)
    before = shard.read_bytes()
    assert main(["train", "--model", "ridge", "--data", str(data),
                 "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{shard.name} is damaged" in err and "run collect again" in err
    assert shard.read_bytes() == before  # a reader changes nothing


@pytest.mark.subprocess
def test_13_collect_makes_a_damaged_shard_again_and_ignores_strays(dataset, tmp_path):
    from facetwin.agents.inverse.collect import collect
    from facetwin.agents.inverse.dataset import load_columns

    data = _copy_dataset(dataset, tmp_path / "data")
    shard = sorted((data / "shards").glob("seq-*.parquet"))[-1]
    _flip_in_column(shard, "applied")
    (data / "shards" / "seq-notes.parquet").write_text("a stray file")
    collect("emo11", "babble", 256, data, progress=False)
    assert (data / "shards" / f"{shard.name}.damaged").exists()
    again = load_columns(data, ["applied", "features"])
    whole = load_columns(dataset[0], ["applied", "features"])
    assert all(np.array_equal(again[k], whole[k]) for k in whole)


@pytest.mark.subprocess
def test_13_damaged_models_and_metadata_are_named_in_one_line(dataset, tmp_path, capsys):
    from facetwin.agents.inverse.train import train
    from facetwin.cli import main

    model = tmp_path / "ridge"
    train("ridge", dataset[0], model, progress=False)
    original = {f: (model / f).read_bytes() for f in ("model.json", "model.safetensors")}
    config = json.loads(original["model.json"])

    def edited(**changes):
        return json.dumps(config | changes).encode()

    cases = {
        "truncated weights": ("model.safetensors", original["model.safetensors"][:100],
                              "model.safetensors is damaged"),
        "empty weights": ("model.safetensors", b"", "model.safetensors is damaged"),
        "a flipped bit in a weight": ("model.safetensors",
                                      original["model.safetensors"][:-9]
                                      + bytes([original["model.safetensors"][-9] ^ 4])
                                      + original["model.safetensors"][-8:],
                                      "its sha256 is not the one written beside it"),
        "another architecture": ("model.json", edited(model="mlp"), "makes no model"),
        "other shapes": ("model.json", edited(architecture={**config["architecture"],
                                                            "n_controls": 11}),
                         "does not fit the architecture"),
        "an unknown key": ("model.json", edited(architecture={**config["architecture"],
                                                              "depth": 3}),
                           "makes no model"),
    }
    for what, (name, content, complaint) in cases.items():
        (model / name).write_bytes(content)
        assert main(["evaluate", "--model", str(model), "--data", str(dataset[0]),
                     "--closed-loop", "0"]) == 2, what
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and complaint in err, (what, err)
        (model / name).write_bytes(original[name])
    for key in ("plan", "splits"):
        data = _copy_dataset(dataset, tmp_path / f"no-{key}")
        meta = json.loads((data / "meta.json").read_text())
        del meta[key]
        (data / "meta.json").write_text(json.dumps(meta))
        assert main(["train", "--model", "ridge", "--data", str(data),
                     "--out", str(tmp_path / "m")]) == 2
        assert f"'{key}' must" in capsys.readouterr().err


@pytest.mark.parametrize("argv, complaint", [
    (["mimic", "--model", "m", "--source", "s", "--fps", "0"], "--fps: 0 is not above 0"),
    (["mimic", "--model", "m", "--source", "s", "--fps", "nan"], "--fps: nan is not"),
    (["mimic", "--model", "m", "--source", "s", "--gain", "nan"], "--gain: nan is not"),
    (["train", "--model", "mlp", "--data", "d", "--out", "o", "--epochs", "0"],
     "--epochs: 0 is outside 1"),
    (["annotate", "--pool", "p", "--port", "70000"], "--port: 70000 is outside 1..65535"),
    (["annotate", "--pool", "p", "--port", "-1"], "--port: -1 is outside"),
    (["evaluate", "--model", "m", "--data", "d", "--closed-loop", "-1"], "--closed-loop"),
    (["expressions", "--fps", "0"], "--fps: 0 is outside 1..120"),
    (["fit-preference", "--pool", "p", "--out", "o", "--folds", "0"], "--folds: 0"),
    (["optimize", "--target", "happiness", "--budget", "ten", "--out", "o"],
     "--budget: 'ten' is not a whole number"),
    (["pool", "--expression", "happiness", "--source", "dataset", "--out", "o"],
     "--source dataset needs --source-path"),
    (["optimize", "--target", "happiness", "--preferential", "--budget", "2", "--out", "o"],
     "at least [0-9]+ comparisons"),
])
def test_14_bad_arguments_get_one_line_before_anything_starts(argv, complaint, tmp_path,
                                                              monkeypatch, capsys):
    from facetwin.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("facetwin: "), err
    assert re.search(complaint, err), err
    assert list(tmp_path.iterdir()) == []  # nothing was started


@pytest.mark.subprocess
def test_14_an_out_that_is_a_file_a_faceless_picture_a_huge_command_are_one_line(
        dataset, tmp_path, capsys):
    from facetwin.cli import main
    from facetwin.hardware.journal import Journal

    emo = profiles.load("emo11")
    journal = Journal(tmp_path / "j.jsonl", emo.name, emo.sha256)
    journal.append("command", requested=[1e300] * len(emo.controls))
    journal.close()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    blank = tmp_path / "blank.png"
    import imageio.v3 as iio
    iio.imwrite(blank, np.full((96, 96, 3), 200, np.uint8))
    for argv, complaint in [
        (["train", "--model", "ridge", "--data", str(dataset[0]), "--out", str(a_file)],
         "cannot use .*a_file as the output folder"),
        (["pool", "--profile", "emo11", "--expression", "happiness", "--size", "2",
          "--out", str(a_file)], "cannot use .*a_file as the pool folder"),
        (["optimize", "--profile", "emo11", "--target-image", str(blank), "--budget", "2",
          "--workers", "1", "--out", str(tmp_path / "o")], "found no face"),
        (["replay", str(journal.path)], "j.jsonl:2: 'requested' must be 16 finite numbers "
                                        "within float32's range"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(complaint, err), err
    assert a_file.read_text() == "x"


@pytest.mark.subprocess
def test_14_ctrl_c_in_collect_is_one_line_that_says_run_it_again(tmp_path):
    from helpers import wait_until

    out = tmp_path / "data"
    child = subprocess.Popen([sys.executable, "-m", "facetwin.cli", "collect", "--profile",
                              "emo11", "--samples", "4096", "--workers", "2", "--no-images",
                              "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    wait_until(lambda: len(_loaded_workers(child.pid)) == 2, timeout_s=300,
               what="two workers with their twin")
    os.killpg(child.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    err = child.communicate(timeout=120)[1]
    assert child.returncode == 130
    assert ("facetwin: collect interrupted: what it made is kept; run the same command "
            "again to resume") in err.splitlines()  # among MediaPipe's own log lines
    assert "Traceback" not in err


# -- misleading results ----------------------------------------------------------------

@pytest.mark.subprocess
def test_15_without_a_validation_split_nothing_is_called_validation(dataset, tmp_path,
                                                                     capsys):
    from facetwin.agents.inverse.train import train

    data = _copy_dataset(dataset, tmp_path / "data")
    meta = json.loads((data / "meta.json").read_text())
    meta["splits"]["train"] += meta["splits"]["val"]
    meta["splits"]["val"] = []
    (data / "meta.json").write_text(json.dumps(meta))
    info = train("mlp", data, tmp_path / "mlp", epochs=3, features="mediapipe",
                 progress=False)
    assert "val_l1" not in info and info["val_samples"] == 0 and "train_l1" in info


@pytest.mark.subprocess
def test_15_an_unfinished_collection_is_named_as_such(dataset, tmp_path):
    from facetwin.agents.inverse.dataset import DatasetError
    from facetwin.agents.inverse.train import train

    data = _copy_dataset(dataset, tmp_path / "data")
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps(meta | {"complete": False}))
    with pytest.raises(DatasetError, match="unfinished collection.*run collect again"):
        train("ridge", data, tmp_path / "m", progress=False)


def test_15_only_cant_tell_answers_fit_nothing_and_names_are_one_line(pool, tmp_path):
    from facetwin.agents.preference.answers import AnswerLog
    from facetwin.agents.preference.fit import fit_preference
    from facetwin.agents.preference.models import PreferenceError

    log = AnswerLog(tmp_path / "answers.jsonl")
    for a, b in zip(pool.ids, pool.ids[1:]):
        log.append("ana", (a, b), "tie", "mergesort")
    with pytest.raises(PreferenceError, match="nothing to learn from"):
        fit_preference(pool, log.records, tmp_path / "pref", folds=1, epochs=5)
    assert not (tmp_path / "pref").exists()
    with AnnotationServer([pool], port=0) as server:
        code, reply = _post(f"{server.url}/api/happy/undo", {"annotator": "bob\n"})
        assert code == 400 and "annotator must be" in reply["error"]


def test_15_a_learned_score_below_zero_is_drawn_on_a_linear_axis():
    from facetwin.figures import y_scale

    assert y_scale([(np.array([-2.0, -1.0, 0.5]), "bo"), (np.array([1.0]), "r")]) == "linear"
    assert y_scale([(np.array([2.0, 1.0, 0.5]), "bo")]) == "log"


def test_every_error_of_the_project_is_one_type_the_command_line_prints_in_one_line():
    import importlib
    import inspect
    import pkgutil

    import facetwin
    from facetwin.errors import FaceTwinError

    errors = set()
    packages = [facetwin] + [importlib.import_module(f"facetwin.{sub}")
                             for sub in ("agents", "envs", "hardware", "sim")]
    names = [info.name for package in packages
             for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]
    for name in names:
        if name.startswith("facetwin.assets") or name.endswith("__main__"):
            continue  # the scripts that make the face asset
        module = importlib.import_module(name)
        errors |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                   if issubclass(c, Exception) and not issubclass(c, Warning)
                   and c.__module__.startswith("facetwin.")
                   and not c.__name__.startswith("_")}  # private: control flow
    assert len(errors) > 25
    assert [e.__name__ for e in errors if not issubclass(e, FaceTwinError)] == []
