"""Lesplanner's domain: profiles, slots, segments, booking, payments, messages.

Plain Python only: nothing in this package imports streamlit or fastapi.
"""
