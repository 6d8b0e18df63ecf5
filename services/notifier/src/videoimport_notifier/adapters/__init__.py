"""The notifier's connections to the outside: deliveries table, HTTP, metrics."""
