"""The error a bad hyper-parameter raises, shared by every config of the library."""

from __future__ import annotations


class ConfigError(ValueError):
    """A hyper-parameter out of its valid range.

    Attributes:
        field: name of the offending :class:`MBDConfig` field (or other option).
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


__all__ = ["ConfigError"]
