"""The engine's HTTP routes, one module per resource."""
