"""Errors a user can cause. Each message is one sentence a coordinator understands.

The CLI maps every :class:`PgfError` to ``Error: <message>`` and exit code 1; anything else is a
bug and is allowed to surface as one.
"""


class PgfError(Exception):
    """Base of every error caused by input or state rather than by a bug."""


class ProtocolError(PgfError):
    """The protocol parameter file is missing, malformed or names unknown parameters."""


class StoreError(PgfError):
    """The store URL is malformed, unreachable or holds something we cannot read."""


class DomainError(PgfError):
    """A command broke a validation or protocol rule."""


class ValidationError(DomainError):
    """A value is malformed, out of range or in an unknown unit."""


class PatientNotFoundError(DomainError):
    def __init__(self, subject: str):
        super().__init__(
            f"patient {subject} is not registered (register them first with 'pgf record register {subject} ...')"
        )
        self.subject = subject


class DuplicatePatientError(DomainError):
    def __init__(self, subject: str):
        super().__init__(f"patient {subject} is already registered; subject codes are unique")
        self.subject = subject


class RuleViolation(DomainError):
    """A protocol rule forbids this record now (not enrolled, too soon after a dose, after death...)."""


class EventNotFoundError(DomainError):
    """A correction or void names an event the patient does not have."""


class ConcurrencyError(PgfError):
    """Another user kept writing to the same patient; we gave up retrying."""


class AccessDenied(PgfError):
    """The acting user lacks the role a command needs."""
