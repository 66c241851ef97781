"""Read answers serialized once, by pydantic.

A route that returns a model is validated again by FastAPI against its
`response_model` and serialized through `jsonable_encoder`: about 1 ms for a page of
50 trials, as much as building the page (bench/README.md, "API under load"). The read
routes that clients poll build their model themselves, so they return it as JSON
directly; `response_model` stays on the route for the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")
