"""Thin wrappers around the I/O libraries: HTTP, S3 and PostgreSQL."""
