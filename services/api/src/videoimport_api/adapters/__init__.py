"""I/O adapters: PostgreSQL queries and S3 streaming."""
