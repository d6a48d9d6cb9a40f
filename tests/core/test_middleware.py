import asyncio

from aethercrown.core.middleware import FairSemaphore


def test_fair_semaphore_serves_waiters_in_arrival_order_and_survives_cancellation() -> None:
    async def scenario() -> list[int]:
        gate = FairSemaphore(1)
        order: list[int] = []

        async def worker(n: int) -> None:
            async with gate:
                order.append(n)
                await asyncio.sleep(0.01)

        await gate.__aenter__()  # hold the only permit
        tasks = [asyncio.create_task(worker(n)) for n in range(5)]
        await asyncio.sleep(0.01)
        tasks[2].cancel()  # a waiter that gives up must not lose or leak the permit
        await gate.__aexit__(None, None, None)
        late = asyncio.create_task(worker(99))  # arrives after the others were queued
        await asyncio.gather(*tasks, late, return_exceptions=True)
        async with gate:  # the permit came back
            pass
        return order

    assert asyncio.run(scenario()) == [0, 1, 3, 4, 99]
