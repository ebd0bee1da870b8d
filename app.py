"""Lesplanner console entry point (`streamlit run app.py`).

Signs the user in (local account, or single sign-on when `[auth]` is configured), then builds the
navigation from the pages this role may see and runs the chosen one. Signed-out visitors only get
the sign-in page, whatever URL they open. The pages live in app_pages/ (not pages/, which would
switch Streamlit to its legacy mode and run a page without passing through this file).
"""

import logging

import streamlit as st

from ui import auth
from ui.errors import guard
from ui.i18n import language_picker

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

st.set_page_config(page_title="Lesplanner", page_icon=":material/calendar_month:", layout="wide")
language_picker()

user = None
with guard():
    user = auth.signed_in_user()

if user is None:
    page = st.navigation(auth.signed_out_pages(), position="hidden")
else:
    auth.sidebar_account(user)
    page = st.navigation(auth.pages_for(user.role))

with guard():
    page.run()
