"""An upload is written, parsed and registered off the event loop: drivers share that loop,
so a large file must not stall every study's epochs while it is read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from service.data.uploads import Uploads
from storage import create_engine_for, upgrade_schema
from storage.datasets import DatasetStore


def big_csv(rows: int = 400_000) -> bytes:
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(rows, 8)).round(5), columns=list("abcdefgh")
    )
    frame["label"] = (frame["a"] > 0).astype(int)
    return frame.to_csv(index=False).encode()


def test_the_event_loop_keeps_turning_while_a_large_upload_is_checked(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of an upload waits, once begun, until a coroutine on the loop lets it go
    on: checked on the loop, it would hold still the loop that has to answer, and give up."""
    upgrade_schema(sqlite_url)
    engine = create_engine_for(sqlite_url)
    uploads = Uploads(DatasetStore(engine), tmp_path / "uploads", max_bytes=200_000_000)
    content = big_csv()
    checking, answered = threading.Event(), threading.Event()
    stuck: list[bool] = []
    check = Uploads._check

    def check_once_the_loop_answers(self: Uploads, *args: Any) -> Any:
        checking.set()
        # The timeout only ends a wait that would otherwise never end; it measures nothing.
        stuck.append(not answered.wait(timeout=30))
        return check(self, *args)

    monkeypatch.setattr(Uploads, "_check", check_once_the_loop_answers)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 1 << 20):
            yield content[start : start + (1 << 20)]

    async def answer() -> None:  # stands in for the drivers, which need the loop
        while not checking.is_set():
            await asyncio.sleep(0.001)
        answered.set()

    async def main() -> int:
        answering = asyncio.create_task(answer())
        record = await uploads.add(
            tenant="t", filename="big.csv", target="label", file_format=None, chunks=chunks()
        )
        await answering
        return record.n_rows

    n_rows = asyncio.run(main())
    engine.dispose()
    assert n_rows == 400_000
    assert stuck == [False], "the upload was checked on the event loop"
