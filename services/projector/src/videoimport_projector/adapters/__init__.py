"""The projector's connections to the outside: the read model tables, metrics."""
