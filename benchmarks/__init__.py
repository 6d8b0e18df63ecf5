"""Benchmarks of the video import service: ``python -m benchmarks`` (or ``make bench``).

Each benchmark measures the real code against a baseline run in the same
process, on one local stack started for the run, and reports the ratio; nothing
here asserts on time. See README.md.
"""
