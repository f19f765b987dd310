"""The API contract both processes share: request/response schemas (`schemas`), the error
hierarchy (`errors`) and the handlers that turn requests and failures into HTTP (`handlers`).

Torch-free and light on purpose: the orchestrator imports it too, in its own small venv and
image (fastapi and pydantic only)."""
