"""The notifier's connections to the outside: deliveries and dead-letter tables, HTTP,
metrics."""
