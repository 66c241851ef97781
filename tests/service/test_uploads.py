"""An upload is written, parsed and registered off the event loop: drivers share that loop,
so a large file must not stall every study's epochs while it is read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd

from service.uploads import Uploads
from storage import create_engine_for, upgrade_schema
from storage.datasets import DatasetStore


def big_csv(rows: int = 400_000) -> bytes:
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 8)).round(5),
                         columns=list("abcdefgh"))  # fmt: skip
    frame["label"] = (frame["a"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def test_the_event_loop_keeps_turning_while_a_large_upload_is_checked(
    sqlite_url: str, tmp_path: Path
) -> None:
    upgrade_schema(sqlite_url)
    engine = create_engine_for(sqlite_url)
    uploads = Uploads(DatasetStore(engine), tmp_path / "uploads", max_bytes=200_000_000)
    content = big_csv()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 1 << 20):
            yield content[start : start + (1 << 20)]

    async def main() -> tuple[int, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:  # stands in for the drivers, which need the loop
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.001)
                ticks += 1

        running = asyncio.create_task(ticker())
        record = await uploads.add(tenant="t", filename="big.csv", target="label",
                                   file_format=None, chunks=chunks())  # fmt: skip
        done.set()
        await running
        return ticks, record.n_rows

    ticks, n_rows = asyncio.run(main())
    engine.dispose()
    assert n_rows == 400_000
    # Parsing 400,000 rows takes a few hundred milliseconds; on the loop it would allow a
    # handful of turns at the awaits between chunks, off it a turn every millisecond or so.
    assert ticks >= 100, ticks
