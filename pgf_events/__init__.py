"""pgf-events: an event-sourced trial-conduct engine for NCT06171906 (MSC for poor graft function)."""

__version__ = "0.1.0"
