"""Faithful local fakes of the outside services (Google Calendar, Stripe, Chatwoot).

They sit behind the real client libraries at the HTTP boundary: the code under test is the
code that runs in production, only the endpoint differs."""
