"""Compatibility shims for third-party teacher packages (see each module's docstring)."""
