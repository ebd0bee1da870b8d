"""Typed domain errors. They know nothing of HTTP: the receiver maps them to status codes in one
table (receiver/errors.py) and the console shows their message; their messages are meant for
people and never contain secrets."""

from __future__ import annotations

from typing import Any


class LesplannerError(Exception):
    """Base class of every error Lesplanner raises on purpose."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class ValidationFailed(LesplannerError):
    """Input that can never be right: naive datetimes, wrong durations, unknown minutes."""


class NotFound(LesplannerError):
    """The asked lesson, payment, conversation, ... does not exist."""


class UnknownProfile(ValidationFailed):
    pass


class InvalidProfile(ValidationFailed):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class SlotNotOffered(ValidationFailed):
    """The requested start is not a slot the profile allows at this moment."""


class SlotTaken(LesplannerError):
    """Someone else holds the slot (or the calendar became busy). Carries fresh alternatives."""

    def __init__(self, message: str, alternatives: list | None = None) -> None:
        super().__init__(message)
        self.alternatives = alternatives or []


class InvalidTransition(LesplannerError):
    """A lesson or payment cannot move to the asked state (e.g. cancel an expired hold)."""


class PermissionDenied(LesplannerError):
    """The caller may not do this."""


class SsoRefused(PermissionDenied):
    """A single sign-on identity the console does not accept. `reason` says which rule:
    unverified | issuer | domain | stale | no_account (the console words each one)."""

    def __init__(self, reason: str, message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.reason = reason


class IntegrationUnavailable(LesplannerError):
    """An outside service is down, refused us, or is not configured."""


class CalendarUnavailable(IntegrationUnavailable):
    pass


class PaymentsNotConfigured(IntegrationUnavailable):
    pass


class PaymentProviderError(IntegrationUnavailable):
    pass


class WebhookNotConfigured(IntegrationUnavailable):
    pass


class WebhookSignatureInvalid(LesplannerError):
    """A Stripe webhook delivery whose signature does not verify."""
