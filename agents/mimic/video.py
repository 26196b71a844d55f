"""What mimicry shows: side-by-side frames (person | robot | both landmark sets), encoded
to a video on a thread of their own, and a preview window where a display exists."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from facetwin.agents.mimic.pipeline import Command
from facetwin.figures import dots, labelled, row
from facetwin.hardware.camera import square_crop

PERSON, ROBOT, TARGET = (240, 200, 40), (40, 230, 90), (240, 60, 200)


class VideoWriter:
    """Side-by-side frames (person | robot | both landmark sets), composed and encoded on
    a thread of their own so that the loop does not wait for the encoder."""

    def __init__(self, path: Path, fps: float, size: int):
        self.path, self.size = path, size
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._writer = imageio.get_writer(path, fps=fps, macro_block_size=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="mimic-video", daemon=True)
        self._thread.start()

    def put(self, person: np.ndarray, command: Command, obs: dict) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}")
        self._queue.put((person, command, obs["image"].copy(), obs["landmarks"].copy()))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                person, command, image, landmarks = item
                self._writer.append_data(self.compose(person, command,
                                                      {"image": image, "landmarks": landmarks}))
            except Exception as exc:  # reported to the loop at the next frame
                self._error = exc

    def compose(self, person: np.ndarray, command: Command, obs: dict) -> np.ndarray:
        s = self.size
        h, w = person.shape[:2]
        side = min(h, w)
        left = Image.fromarray(square_crop(person, s))
        if command.person is not None:
            scale = s / side
            offset = np.array([(w - side) / 2, (h - side) / 2])
            dots(left, (command.person - offset) * scale, PERSON)
        robot = Image.fromarray(obs["image"])
        both = dots(Image.fromarray((obs["image"] * 0.45).astype(np.uint8)), obs["landmarks"],
                    ROBOT)
        if command.target is not None:
            dots(both, command.target, TARGET)
        return np.asarray(row([labelled(left, "person"), labelled(robot, "robot"),
                               labelled(both, "robot (green), person (pink)")]))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise RuntimeError(f"writing {self.path} failed: {self._error}")


class Preview:
    """A window showing the side-by-side frames, where a display exists."""

    @staticmethod
    def possible() -> bool:
        import os

        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

    def __call__(self, frame: np.ndarray) -> None:
        import cv2

        cv2.imshow("facetwin mimic", frame[..., ::-1])
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()
