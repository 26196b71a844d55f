"""The parallel engine: units of work on Ray workers, each worker with a twin of its own;
what they make comes home to the driver (this process), which writes every file.

    engine = Engine(workers=2)                          # Ray embedded on this machine
    engine = Engine(workers=16, address="10.0.0.5:6379") # an existing cluster (or RAY_ADDRESS)
    outcome = engine.run(job, units, bar)

A :class:`Job` says how a worker is built (a class and its arguments: a twin, MediaPipe,
a strategy), what a unit asks of it (``payload(unit)``, asked again each time the unit
starts, so a restarted unit is told what the driver already holds), what the driver does
with each thing the unit yields (``take``: keep rows, append an evaluation to a run log)
and with a finished unit (``finish``: write its shard). Workers are given no path to
write to, so nothing assumes a disk shared across machines.

A unit whose worker dies (killed, out of memory, its node gone) or raises is started
again once, on a fresh worker; failed twice, it is reported by name and the other units
go on. One worker without an address runs here, in this process, with no Ray at all:
errors then surface with their own traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from facetwin import profile as profiles
from facetwin.errors import FaceTwinError
from facetwin.lifeline import Reaper

ATTEMPTS = 2  # a unit is started at most twice
GL_SETTINGS = ("PYOPENGL_PLATFORM", "MUJOCO_GL")  # the driver's choice, given to workers


class EngineError(FaceTwinError, RuntimeError):
    """The engine could not start or reach its workers; the message says why."""


@dataclass
class Job:
    """What the driver and its workers do with each unit (see the module's docstring).

    ``worker(*args)`` is built once per worker process; its ``run(payload)`` is a
    generator whose every yield is handed to ``take(unit, event)`` here, which returns
    how far the progress bar moves. ``name(unit)`` names a unit in reports."""

    worker: type
    args: tuple
    take: Callable[[Hashable, Any], int]
    finish: Callable[[Hashable], None]
    payload: Callable[[Hashable], Any] = lambda unit: unit
    name: Callable[[Hashable], str] = str


@dataclass
class Outcome:
    done: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # unit -> why, after its last attempt

    def describe(self, job: Job) -> str:
        return "; ".join(f"{job.name(u)}: {why}" for u, why in self.failed.items())


class Engine:
    """Where a command's units run: here (one worker, no address) or on Ray, embedded
    on this machine's cores or on the cluster at ``address`` (default: ``RAY_ADDRESS``)."""

    def __init__(self, workers: int = 1, address: str | None = None):
        if workers < 1:
            raise EngineError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.address = address or os.environ.get("RAY_ADDRESS") or None

    @property
    def in_process(self) -> bool:
        return self.workers == 1 and self.address is None

    def run(self, job: Job, units: Iterable[Hashable], bar: tqdm,
            meanwhile: Callable[[], None] = lambda: None) -> Outcome:
        """Every unit, each once (twice where it failed); ``meanwhile`` runs here while
        the workers start, before anything of theirs is taken."""
        units = list(units)
        if not units:
            meanwhile()
            return Outcome()
        if self.in_process:
            meanwhile()
            return _run_here(job, units, bar)
        with ray_session(self.address, self.workers) as capacity:
            return _Scheduler(job, min(self.workers, capacity, len(units)), bar).run(
                units, meanwhile)


def _run_here(job: Job, units: list, bar: tqdm) -> Outcome:
    worker = job.worker(*job.args)
    outcome = Outcome()
    for unit in units:
        for event in worker.run(job.payload(unit)):
            bar.update(job.take(unit, event))
        job.finish(unit)
        outcome.done.append(unit)
    return outcome


class ray_session:
    """Ray for the length of a ``with``: started embedded on this machine (``address``
    None) or connected to a cluster, and shut down after, unless it was running already.
    Gives the number of CPUs the workers may use."""

    def __init__(self, address: str | None, workers: int):
        self.address, self.workers, self.started = address, workers, False
        self.reaper = None

    def __enter__(self) -> int:
        if self.address is not None:
            _token_auth_if_known()
        import ray

        if not ray.is_initialized():
            # Ray says it made a token for this cluster: true, and nothing to act on here.
            logging.getLogger("ray._private.authentication.authentication_token_setup") \
                .setLevel(logging.ERROR)
            settings = {k: os.environ[k] for k in GL_SETTINGS if k in os.environ}
            common = dict(logging_level=logging.WARNING, log_to_driver=False,
                          runtime_env={"env_vars": settings} if settings else None,
                          configure_logging=True)
            try:
                if self.address is None:
                    # "local": a Ray of its own, even where `ray start` left one running.
                    # Logical CPUs: a worker per CPU, however many cores back them.
                    # No idle workers started ahead: each worker is a twin's process.
                    # What Ray starts here dies with this process, however it ends.
                    self.reaper = Reaper()
                    ray.init(address="local", num_cpus=self.workers, include_dashboard=False,
                             _system_config={"enable_worker_prestart": False,
                                             "prestart_worker_first_driver": False},
                             **common)
                else:
                    ray.init(address=self.address, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                self.__exit__()
                raise EngineError(f"cannot start Ray{' at ' + self.address if self.address else ''}"
                                  f": {exc}") from None
            self.started = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            self.__exit__()
            raise EngineError(f"the Ray cluster{' at ' + self.address if self.address else ''} "
                              "has no CPU to run a worker on")
        return cpus

    def __exit__(self, *exc) -> None:
        if self.started:
            import ray

            ray.shutdown()
        if self.reaper is not None:
            self.reaper.close()
            self.reaper = None


def _token_auth_if_known() -> None:
    """Ray 2.60's ``ray start --head`` makes a token (~/.ray/auth_token) and asks every
    client for it, yet its clients only send it when told to (``RAY_AUTH_MODE=token``):
    tell them, where a token is at hand and the user chose no mode."""
    if "RAY_AUTH_MODE" not in os.environ and (
            "RAY_AUTH_TOKEN" in os.environ or (Path.home() / ".ray" / "auth_token").exists()):
        os.environ["RAY_AUTH_MODE"] = "token"
    ray = sys.modules.get("ray")
    if ray is not None and not ray.is_initialized():
        from ray._raylet import Config

        Config.initialize("")  # Ray read the mode when it was imported: again, now


class _Scheduler:
    """Keeps every worker busy with one unit, hands what units yield to the job as it
    comes, and starts a failed unit again on a fresh worker."""

    def __init__(self, job: Job, workers: int, bar: tqdm):
        self.job, self.workers, self.bar = job, workers, bar
        self.attempts: Counter = Counter()
        self.moved: Counter = Counter()  # the bar's progress of each running unit
        self.outcome = Outcome()

    def run(self, units: list, meanwhile: Callable[[], None]) -> Outcome:
        import ray
        from ray.exceptions import RayError

        self.queue = deque(units)
        self.running = {}  # the unit's stream -> (its worker, the unit)
        host = ray.remote(num_cpus=1, max_restarts=0)(_Host)
        self.host = host
        workers = [host.remote(self.job.worker, self.job.args) for _ in range(self.workers)]
        try:
            for w in workers:
                self.dispatch(w)
            self.show()
            meanwhile()
            while self.running:
                ready, _ = ray.wait(list(self.running), num_returns=1, timeout=1.0)
                for stream in ready:
                    self.step(stream, ray, RayError)
        finally:
            for w, _ in self.running.values():
                ray.kill(w)
        return self.outcome

    def dispatch(self, worker) -> None:
        if not self.queue:
            import ray

            ray.kill(worker)
            return
        unit = self.queue.popleft()
        self.attempts[unit] += 1
        self.moved[unit] = 0
        stream = worker.run.remote(self.job.payload(unit))
        self.running[stream] = (worker, unit)

    def step(self, stream, ray, RayError) -> None:
        worker, unit = self.running[stream]
        try:
            event = ray.get(next(stream))
        except StopIteration:
            del self.running[stream]
            self.job.finish(unit)
            self.outcome.done.append(unit)
            self.dispatch(worker)
            self.show()
            return
        except RayError as exc:
            if getattr(exc, "actor_init_failed", False):  # so would every other worker
                raise EngineError(f"a worker could not start: {_last_line(exc)}") from None
            del self.running[stream]
            self.bar.update(-self.moved[unit])  # what it made is dropped
            self.failed(unit, exc)
            ray.kill(worker)  # a worker that raised may hold a twin in any state
            self.dispatch(self.host.remote(self.job.worker, self.job.args))
            self.show()
            return
        moved = self.job.take(unit, event)
        self.moved[unit] += moved
        self.bar.update(moved)

    def failed(self, unit, exc: Exception) -> None:
        why = _why(exc)
        name = self.job.name(unit)
        if self.attempts[unit] < ATTEMPTS:
            tqdm.write(f"facetwin: {name} failed ({why}); starting it again on a fresh worker",
                       file=sys.stderr)
            self.queue.appendleft(unit)
        else:
            tqdm.write(f"facetwin: {name} failed again ({why}); the other units go on",
                       file=sys.stderr)
            self.outcome.failed[unit] = why

    def show(self) -> None:
        self.bar.set_postfix(running=len(self.running), queued=len(self.queue),
                             done=len(self.outcome.done), failed=len(self.outcome.failed),
                             refresh=True)


def _why(exc: Exception) -> str:
    from ray.exceptions import RayActorError, RayTaskError

    if isinstance(exc, RayActorError):
        return "its worker died: killed, out of memory, or its machine gone"
    if isinstance(exc, RayTaskError):
        cause = exc.cause if exc.cause is not None else exc
        return f"{type(cause).__name__}: {_last_line(cause)}"
    return f"{type(exc).__name__}: {_last_line(exc)}"


def _last_line(exc: Exception) -> str:
    """What a remote traceback ends with: the error itself."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else type(exc).__name__


class _Host:
    """A Ray worker process holding one worker of a job (its twin stays between units)."""

    def __init__(self, worker: type, args: tuple):
        from facetwin.threads import one_thread_for_life

        one_thread_for_life()
        self.worker = worker(*args)

    def run(self, payload) -> Iterator:
        yield from self.worker.run(payload)


def profile_ref(p: profiles.Profile) -> tuple[str, str]:
    """How a worker finds ``p``: a built-in profile by name, another by its path (which
    must hold the same file on every machine), with its hash to check."""
    builtin = p.path.resolve() == (profiles.ROBOTS_DIR / f"{p.name}.toml").resolve()
    return (p.name if builtin else str(p.path), p.sha256)


def load_profile(ref: tuple[str, str]) -> profiles.Profile:
    """The profile a worker was sent, refused where this machine's file differs."""
    name, sha256 = ref
    p = profiles.load(name)
    if p.sha256 != sha256:
        raise EngineError(f"the robot profile {name} on this worker differs from the "
                          "driver's (another version of the file or of FaceTwin): install "
                          "the same on every machine")
    return p
