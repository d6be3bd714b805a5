"""ASGI entry point for uvicorn or any ASGI server: ``setia.asgi:app``."""

from setia.app import create_app

app = create_app()
