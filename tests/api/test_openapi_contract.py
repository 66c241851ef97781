"""The HTTP surface is a contract that other tools rely on: the OpenAPI document the
service serves must stay byte-identical to the committed copy. A change that means to
alter the surface regenerates the copy on purpose:

    HPO_WRITE_OPENAPI=1 .venv/bin/python -m pytest tests/api/test_openapi_contract.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from api.app import create_app
from service.settings import Settings

COPY = Path(__file__).parent / "contract" / "openapi.json"


def render(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_the_openapi_document_is_byte_identical_to_the_committed_copy(tmp_path: Path) -> None:
    # The served one is this document: tests/api/test_schemathesis.py checks that.
    text = render(create_app(Settings(data_dir=tmp_path / "unused")).openapi())
    if os.environ.get("HPO_WRITE_OPENAPI") == "1":
        COPY.write_text(text, encoding="utf-8")
    expected = COPY.read_text(encoding="utf-8")
    assert text == expected, (
        "the OpenAPI document changed; if that is meant, regenerate the copy "
        "(see this module's docstring) and say why in the commit"
    )
