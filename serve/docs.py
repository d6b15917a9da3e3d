"""``/docs`` without a CDN: Swagger UI's assets come from the installed ``swagger-ui-bundle`` package.

A robot network is often offline; FastAPI's default ``/docs`` page loads Swagger UI from a CDN and
stays blank there.  Here the page and its JS/CSS are served by the policy server itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse

STATIC = "/docs/static"


def swagger_ui_dir():
    """The installed Swagger UI assets folder, or None (package ``swagger-ui-bundle`` missing)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return swagger_ui_path


def add_offline_docs(app: FastAPI, title: str) -> None:
    """Mount ``/docs`` (Swagger UI over ``app.openapi_url``) with assets served under ``/docs/static``."""
    from starlette.staticfiles import StaticFiles

    assets = swagger_ui_dir()
    if assets is not None:
        app.mount(STATIC, StaticFiles(directory=str(assets)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if assets is None:
            return PlainTextResponse(
                "Swagger UI assets not installed: pip install swagger-ui-bundle "
                f"(the schema itself is at {app.openapi_url})",
                status_code=503,
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{title} - docs",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        )
