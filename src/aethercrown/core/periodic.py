"""A daemon thread doing one piece of background work every few seconds (request-count flushes,
usage folds), for the lifetime of an API process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicThread:
    """Calls ``work`` every ``every`` seconds until stopped. A failed call is logged and the
    next tick tries again: the work must leave nothing half done when it raises. ``final``
    calls it once more on stop, so what was pending at shutdown is not dropped."""

    def __init__(
        self, name: str, every: float, work: Callable[[], object], *, final: bool = False
    ) -> None:
        self._name = name
        self._every = every
        self._work = work
        self._final = final
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._call()

    def _call(self) -> None:
        try:
            self._work()
        except Exception:
            log.warning("%s failed; retrying next tick", self._name, exc_info=True)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._final:
            self._call()
