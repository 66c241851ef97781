"""What /readyz answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ReadinessOut(BaseModel):
    """`ok`, or what is wrong with each part."""

    status: Literal["ok", "unavailable"]
    database: str
    ray: str
