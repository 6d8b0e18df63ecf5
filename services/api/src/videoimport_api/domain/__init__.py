"""Pure decisions of the API: request validation, version policy, status rendering.

Nothing here does I/O; the handlers feed it data and act on its answers.
"""
