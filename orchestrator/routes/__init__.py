"""The orchestrator's routes: the public REST API and the pages."""
