"""ASGI entry point: ``uvicorn main:app --port 8100``."""

from crp_gateway.app import app_from_environment

app = app_from_environment()
