"""One error hierarchy: every error a user can cause says what went wrong and how to fix it."""

from __future__ import annotations


class AccelbenchError(Exception):
    """Base class. ``fix`` is one sentence that names what to do."""

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message}\n  fix: {fix}")


class ConfigError(AccelbenchError):
    """An invalid parameter or configuration value."""


class UnknownNameError(ConfigError):
    """A name that is not in a registry; lists the known names."""

    def __init__(self, kind: str, name: str, known: list[str], fix: str | None = None):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(
            f"unknown {kind} {name!r}; known: {', '.join(self.known) or '(none)'}",
            fix or f"use one of the known {kind} names, or register your own",
        )


class DataError(AccelbenchError):
    """Missing, empty or malformed data."""


class ModelError(AccelbenchError):
    """A model that cannot be loaded or does not fit the task."""


class MethodNotApplicableError(AccelbenchError):
    """A compression method that does not apply to a model (family, hardware)."""
