"""Typed domain errors. The receiver maps them to HTTP status codes in one place and the
console to `st.error`; their messages are meant for people and never contain secrets."""

from __future__ import annotations

from typing import Any


class LesplannerError(Exception):
    """Base class. `http_status` is the receiver's answer for this error."""

    http_status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class ValidationFailed(LesplannerError):
    """Input that can never be right: naive datetimes, wrong durations, unknown minutes."""

    http_status = 422


class NotFound(LesplannerError):
    http_status = 404


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

    http_status = 409

    def __init__(self, message: str, alternatives: list | None = None) -> None:
        super().__init__(message)
        self.alternatives = alternatives or []


class InvalidTransition(LesplannerError):
    """A lesson or payment cannot move to the asked state (e.g. cancel an expired hold)."""

    http_status = 409


class PermissionDenied(LesplannerError):
    http_status = 403


class SsoRefused(PermissionDenied):
    """A single sign-on identity the console does not accept. `reason` says which rule:
    unverified | issuer | domain | stale | no_account (the console words each one)."""

    def __init__(self, reason: str, message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.reason = reason


class IntegrationUnavailable(LesplannerError):
    """An outside service is down, refused us, or is not configured."""

    http_status = 503


class CalendarUnavailable(IntegrationUnavailable):
    pass


class PaymentsNotConfigured(IntegrationUnavailable):
    pass


class PaymentProviderError(IntegrationUnavailable):
    pass


class WebhookNotConfigured(IntegrationUnavailable):
    pass


class WebhookSignatureInvalid(LesplannerError):
    http_status = 400


class ChatUnavailable(IntegrationUnavailable):
    pass
