"""The HTTP API of the video import service (``python -m videoimport_api``)."""
