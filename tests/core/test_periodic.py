import threading

from aethercrown.core.periodic import PeriodicThread


def test_work_runs_every_tick_survives_failures_and_runs_once_more_on_stop() -> None:
    calls: list[int] = []
    ticked = threading.Event()

    def work() -> None:
        calls.append(len(calls))
        if len(calls) >= 3:
            ticked.set()
        if len(calls) == 1:
            raise RuntimeError("the first tick fails; the next ones still run")

    thread = PeriodicThread("test-work", 0.01, work, final=True)
    thread.start()
    assert ticked.wait(5)
    thread.stop()
    ran = len(calls)
    assert ran >= 4  # three ticks (one failed), then the final call on stop
    thread.stop()  # stopping again: one more final call, no tick
    assert len(calls) == ran + 1


def test_without_final_stop_only_stops() -> None:
    calls: list[int] = []
    thread = PeriodicThread("test-idle", 3600, lambda: calls.append(1))
    thread.start()
    thread.stop()
    assert calls == []
