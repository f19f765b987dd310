"""LoraMint's orchestrator: web pages, the public API, and the engine's supervisor."""
