"""The relay's connections to the outside: leader lock, metrics."""
