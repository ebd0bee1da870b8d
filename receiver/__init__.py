"""The receiver: Lesplanner's HTTP service for Stripe webhooks and the chatbot's API
(`uvicorn receiver.main:app`). Routes are thin adapters over `core`."""
