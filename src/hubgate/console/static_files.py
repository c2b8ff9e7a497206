"""The console's own static files, and Swagger UI's from the swagger-ui-bundle-v2 wheel (D150).

Only the two Swagger UI files the API docs page loads are served: the package also ships a
demo page and initializer that point at a public petstore, which must never be reachable here.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from hubgate.console.pages import not_found

CONSOLE_STATIC = Path(__file__).parent / "static"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@router.get("/static/swagger-ui/{name}")
async def swagger_ui_file(name: str) -> FileResponse:
    media_type = SWAGGER_UI_FILES.get(name)
    if media_type is None:
        raise not_found()
    return FileResponse(
        SWAGGER_UI_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def console_static() -> StaticFiles:
    return StaticFiles(directory=CONSOLE_STATIC)
