"""Streamlit glue for the console: cached engine and reads (data), the signed-in user and role
guard (auth), Dutch/English UI strings (i18n), display formatting (fmt) and error display
(errors). Nothing here decides business rules; that is core's job."""
