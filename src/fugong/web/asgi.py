"""ASGI entry point for multi-worker servers: ``uvicorn fugong.web.asgi:app``."""

from fugong.web.app import create_app

app = create_app()
