"""Metadata store: SQLModel tables (``models``) and engine helpers (``engine``)."""
