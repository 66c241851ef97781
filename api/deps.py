"""Dependencies that hand handlers the service objects built at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.runtime import Runtime
from service.studies import StudyService


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_studies(runtime: Annotated[Runtime, Depends(get_runtime)]) -> StudyService:
    return runtime.studies


Studies = Annotated[StudyService, Depends(get_studies)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
