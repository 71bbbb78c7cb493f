"""The control-plane REST API (FastAPI). ``create_app`` is the app factory."""
