"""Exceptions raised on bad input. All derive from ValueError so callers can catch broadly."""

from __future__ import annotations


class LLMRecError(ValueError):
    """Base class for llmrec's input errors."""


class DataError(LLMRecError):
    """A data file, table or dataset name is malformed or unknown."""


class SplitError(LLMRecError):
    """A split cannot be made as asked (empty result, user left with no training history)."""


class ConfigError(LLMRecError):
    """A config or preset is invalid."""


class ArtifactError(DataError):
    """A folder llmrec writes or reads is refused: it holds files llmrec did not write, is an
    artifact of another kind, or a part does not match the artifact's manifest."""
