"""Fault scenarios against a whole local deployment: ``make reliability``."""
