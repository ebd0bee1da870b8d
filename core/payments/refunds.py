"""Refunds we start ourselves go through Stripe's Refunds API as jobs; see core/jobs.py.

Refunds made in the Stripe dashboard arrive as `charge.refunded` webhooks and are handled in
core/payments/webhooks.py. Nothing lives here yet.
"""

from __future__ import annotations
