"""``facetwin annotate``: the pairwise annotation page and its JSON API (Flask).

    server = AnnotationServer([load_pool("out/pool")], strategy="mergesort").start()
    server.url                     # http://127.0.0.1:PORT/ ; server.close() to stop

The API (every error is a 4xx with ``{"error": reason}``):

- ``GET  /api/pools``: the pools served;
- ``GET  /api/POOL/next?annotator=NAME``: the next pair for NAME (``pair`` is [left,
  right]), or ``done``, or ``waiting`` (for an optimiser's next pair); progress as
  comparisons ``done`` of ``expected``;
- ``POST /api/POOL/answer`` ``{"annotator", "pair": [left, right], "answer":
  "left"|"right"|"tie"}``: logged (fsynced) before the reply;
- ``POST /api/POOL/undo`` ``{"annotator"}``: removes NAME's last answer;
- ``GET  /api/POOL/image/ID.png``: a face.

Pairs asked for by an optimiser (:meth:`PoolSession.compare`, preferential BO) come before
the strategy's to whichever annotator asks next.
"""

from __future__ import annotations

import errno
import re
import socket
import threading
from importlib import resources
from pathlib import Path

from flask import Flask, jsonify, redirect, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from facetwin.agents.preference.answers import ANSWERS, AnswerLog
from facetwin.agents.preference.pairing import (
    STRATEGIES, active_budget, active_pair, side_of, sorting_budget, sorting_state,
)
from facetwin.agents.preference.pool import Pool, PoolError
from facetwin.errors import FaceTwinError
from facetwin.files import claim_folder

NAME = re.compile(r"[\w .@-]{1,40}")
MAX_REQUEST_BYTES = 64 * 1024  # an answer is a hundred bytes
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class BadRequest(FaceTwinError, ValueError):
    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


class PoolSession:
    """One pool under annotation: its answer log and its pairing strategy."""

    def __init__(self, pool: Pool, strategy: str = "mergesort", answers: Path | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; available: "
                             f"{', '.join(STRATEGIES)}")
        self.pool, self.strategy = pool, strategy
        # One writer per pool: a second server would rewrite the log from its own copy.
        self._lock = claim_folder(pool.path, "pool", PoolError)
        self.log = AnswerLog(answers or pool.path / "answers.jsonl")
        self._asked: list[tuple[str, str]] = []
        self._answered = threading.Condition()
        self._issued: dict[str, frozenset] = {}  # the pair each annotator was last shown
        self._answering = threading.Lock()

    def close(self) -> None:
        self._lock.close()

    def next(self, annotator: str) -> dict:
        mine = self.log.of(annotator)
        pair, strategy, expected = self._next(annotator, mine)
        if pair is not None:
            self._issued[annotator] = frozenset(pair)
        waiting = pair is None and self.strategy == "asked"
        reply = {"done": pair is None and not waiting, "waiting": waiting,
                 "strategy": strategy,
                 "progress": {"done": len(mine), "expected": max(expected, len(mine))}}
        if pair is not None:
            reply["pair"] = list(side_of(pair, annotator))
        return reply

    def _next(self, annotator: str, mine: list[dict]):
        answered = {frozenset(r["pair"]) for r in mine}
        with self._answered:
            for pair in self._asked:
                if frozenset(pair) not in answered:
                    return pair, "asked", len(mine) + 1
        pool = self.pool
        if self.strategy == "asked":
            return None, "asked", len(mine)
        if self.strategy == "active":
            expected = active_budget(len(pool))
            if len(mine) >= expected:
                return None, "active", expected
            return active_pair(pool.ids, pool.features, self.log.of(), annotator), \
                "active", expected
        originals = [i for i, o in zip(pool.ids, pool.origins) if o == "pool"]
        added = [i for i, o in zip(pool.ids, pool.origins) if o != "pool"]
        pair, _ = sorting_state(originals, added, mine, annotator)
        return pair, "mergesort", sorting_budget(len(originals), len(added))

    def answer(self, annotator: str, pair: list[str], answer: str) -> dict:
        """Log ``annotator``'s answer to ``pair``, a pair they were asked and have not
        answered yet; anything else is a :class:`BadRequest` (409)."""
        key = tuple(sorted(pair))
        with self._answering:  # the check and the append, one answer at a time
            if any(frozenset(r["pair"]) == frozenset(key) for r in self.log.of(annotator)):
                raise BadRequest(f"{annotator} has answered {list(key)} already "
                                 "(undo it to answer again)", 409)
            with self._answered:
                asked = key in self._asked
            due = self._next(annotator, self.log.of(annotator))[0]  # a page from before a
            # restart still shows the pair due
            if not (asked or self._issued.get(annotator) == frozenset(key)
                    or (due is not None and frozenset(due) == frozenset(key))):
                raise BadRequest(f"{list(key)} was not asked of {annotator}: ask "
                                 "/next for the pair to answer", 409)
            record = self.log.append(annotator, (pair[0], pair[1]), answer,
                                     "asked" if asked else self.strategy)
            self._issued.pop(annotator, None)
        if asked:
            with self._answered:
                if key in self._asked:
                    self._asked.remove(key)
                    self._answered.notify_all()
        return record

    def compare(self, left: dict, right: dict, timeout: float | None = None) -> str:
        """Add two faces (``applied``, ``features``, ``image``) to the pool, queue them for
        the next annotator and wait: ``left``, ``right`` or ``tie`` as these two are
        passed, whichever side the page showed them on. The signature preferential BO
        asks of ``compare``."""
        ids = [self.pool.add(f["applied"], f["features"], f["image"]) for f in (left, right)]
        key = tuple(sorted(ids))
        with self._answered:
            self._asked.append(key)
            self._answered.wait_for(lambda: key not in self._asked, timeout)
            if key in self._asked:
                self._asked.remove(key)
                raise TimeoutError(f"no annotator answered {ids} in {timeout} s")
        record = next(r for r in reversed(self.log.of()) if sorted(r["pair"]) == list(key))
        if record["pair"][0] == ids[0]:
            return record["answer"]
        return {"left": "right", "right": "left", "tie": "tie"}[record["answer"]]


def make_app(sessions: dict[str, PoolSession], hosts: set[str] | None = None) -> Flask:
    """``hosts``: the only ``Host:`` headers answered (None: any). A server on this
    machine only answers its own names, so that a web page whose name is made to point
    at 127.0.0.1 (DNS rebinding) cannot read or post answers."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    page = resources.files("facetwin.agents.preference").joinpath("static/annotate.html").read_text()

    def session_of(name: str) -> PoolSession:
        if name not in sessions:
            raise BadRequest(f"unknown pool {name!r}; served: {', '.join(sessions)}", 404)
        return sessions[name]

    def annotator_of(value) -> str:
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise BadRequest("annotator must be a name of 1 to 40 letters, digits, spaces "
                             f"or . _ - @, got {value!r}")
        return value

    def body() -> dict:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            data = None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        return data

    @app.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return jsonify(error=str(exc)), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description), exc.code

    @app.before_request
    def known_host():
        if hosts is not None and request.host.lower() not in hosts:
            raise BadRequest(f"this server answers {', '.join(sorted(hosts))} only, not "
                             f"{request.host[:80]!r}", 403)

    @app.get("/")
    def index():
        return redirect(f"/pool/{next(iter(sessions))}")

    @app.get("/pool/<name>")
    def annotate_page(name: str):
        session_of(name)
        return page

    @app.get("/api/pools")
    def pools():
        return jsonify(pools=[{"name": n, "expression": s.pool.expression,
                               "question": s.pool.question, "profile": s.pool.profile,
                               "faces": len(s.pool), "strategy": s.strategy}
                              for n, s in sessions.items()])

    @app.get("/api/<name>/next")
    def next_pair(name: str):
        session = session_of(name)
        reply = session.next(annotator_of(request.args.get("annotator")))
        return jsonify(question=session.pool.question, **reply)

    @app.post("/api/<name>/answer")
    def answer(name: str):
        session, data = session_of(name), body()
        annotator = annotator_of(data.get("annotator"))
        pair = data.get("pair")
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(i, str)
                                                                  for i in pair)):
            raise BadRequest(f"pair must be [left id, right id], got {pair!r}")
        unknown = [i for i in pair if i not in session.pool.ids]
        if unknown or pair[0] == pair[1]:
            raise BadRequest(f"unknown pair {pair!r}: "
                             + (f"no face {unknown[0]!r} in pool {name!r}" if unknown
                                else "a face compared with itself"), 404 if unknown else 400)
        if data.get("answer") not in ANSWERS:
            raise BadRequest(f"answer must be one of {', '.join(ANSWERS)}, "
                             f"got {data.get('answer')!r}")
        session.answer(annotator, pair, data["answer"])
        return jsonify(session.next(annotator))

    @app.post("/api/<name>/undo")
    def undo(name: str):
        session, data = session_of(name), body()
        annotator = annotator_of(data.get("annotator"))
        removed = session.log.undo(annotator)
        return jsonify(undone=removed, **session.next(annotator))

    @app.get("/api/<name>/image/<item>.png")
    def image(name: str, item: str):
        pool = session_of(name).pool
        if item not in pool.ids:
            raise BadRequest(f"no face {item!r} in pool {name!r}", 404)
        return send_file(pool.image_path(item), mimetype="image/png", max_age=3600)

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # a line per answer drowns what matters
        pass


def _listening(host: str, port: int) -> socket.socket:
    """A listening socket, or PoolError saying why not (werkzeug's own binding prints
    its reason and exits the process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or exc
        raise PoolError(f"cannot serve on {host}:{port}: {reason}"
                        + (" (another program has that port: give another --port)"
                           if getattr(exc, "errno", None) == errno.EADDRINUSE else "")) from None
    return sock


class AnnotationServer:
    """The annotation app on a werkzeug server in a background thread."""

    def __init__(self, pools: list[Pool], strategy: str = "mergesort",
                 host: str = "127.0.0.1", port: int = 8000):
        names = [p.path.name for p in pools]
        if len(set(names)) != len(names):
            raise PoolError(f"the pools are served by their folder's name, and two are "
                            f"called {next(n for n in names if names.count(n) > 1)!r}: "
                            "rename one")
        self.sessions: dict[str, PoolSession] = {}
        try:
            for p in pools:
                self.sessions[p.path.name] = PoolSession(p, strategy)
            hosts = set() if host in LOOPBACK else None
            with _listening(host, port) as sock:
                self._server = make_server(host, port, make_app(self.sessions, hosts),
                                           threaded=True, request_handler=_QuietHandler,
                                           fd=sock.fileno())
            if hosts is not None:
                port = self.port
                hosts |= {f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        except BaseException:
            for session in self.sessions.values():
                session.close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="annotation-server")

    @property
    def port(self) -> int:
        return self._server.socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self.port}"

    def start(self) -> AnnotationServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        for session in self.sessions.values():
            session.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
