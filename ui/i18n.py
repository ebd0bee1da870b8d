"""UI strings of the console in Dutch (default) and English, chosen in the sidebar.

`tr("key", name=...)` formats the string in the current language and falls back to Dutch, then
to the key itself, so a missing translation shows up as a visible key instead of an exception.
Customer-facing chat texts are not here: they live in core.messages.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

LANGUAGES = {"nl": "Nederlands", "en": "English"}
DEFAULT_LANGUAGE = "nl"

S: dict[str, tuple[str, str]] = {
    # app, sign-in, navigation
    "app.title": ("Lesplanner", "Lesplanner"),
    "app.language": ("Taal", "Language"),
    "signin.title": ("Inloggen", "Sign in"),
    "signin.intro": ("Log in met je Lesplanner-account.", "Sign in with your Lesplanner account."),
    "signin.email": ("E-mailadres", "E-mail address"),
    "signin.password": ("Wachtwoord", "Password"),
    "signin.submit": ("Inloggen", "Sign in"),
    "signin.wrong": (
        "E-mailadres of wachtwoord klopt niet, of het account is niet actief.",
        "Wrong e-mail address or password, or the account is not active.",
    ),
    "signin.throttled": (
        "Te veel mislukte pogingen voor dit account vanaf dit adres. Probeer het over "
        "{minutes} minuten opnieuw.",
        "Too many failed attempts for this account from this address. Try again in {minutes} minutes.",
    ),
    "signin.checking": ("Bezig met inloggen…", "Signing in…"),
    "signin.ended.ended": (
        "Je sessie is beëindigd: je wachtwoord, je rol of je account is gewijzigd. Log opnieuw in.",
        "Your session was ended: your password, role or account changed. Please sign in again.",
    ),
    "signin.ended.idle": (
        "Je sessie is beëindigd na {hours} uur zonder activiteit. Log opnieuw in.",
        "Your session was ended after {hours} h without activity. Please sign in again.",
    ),
    "signin.sso": ("Inloggen met single sign-on", "Sign in with single sign-on"),
    "signin.or_local": ("Of log in met een lokaal account:", "Or sign in with a local account:"),
    "signin.sso.no_account": (
        "Er is geen actief Lesplanner-account voor {email}. Vraag een beheerder om "
        "een account met dit e-mailadres aan te maken.",
        "There is no active Lesplanner account for {email}. Ask an admin to create "
        "an account with this e-mail address.",
    ),
    "signin.sso.unverified": (
        "De identity provider heeft het e-mailadres {email} niet bevestigd, dus "
        "daarmee kun je niet inloggen. Bevestig het adres bij de provider of log in "
        "met een ander account.",
        "The identity provider has not verified the e-mail address {email}, so it "
        "cannot be used to sign in. Verify it with the provider or use another account.",
    ),
    "signin.sso.issuer": (
        "Inloggen via de identity provider {issuer} is hier niet toegestaan.",
        "Signing in through the identity provider {issuer} is not allowed here.",
    ),
    "signin.sso.domain": (
        "Alleen accounts van {domain} kunnen met single sign-on inloggen.",
        "Only accounts of {domain} can sign in with single sign-on.",
    ),
    "signin.sso.stale": (
        "Je aanmelding bij de identity provider is ouder dan {hours} uur. Log daar opnieuw in.",
        "Your sign-in at the identity provider is older than {hours} h. Please sign in there again.",
    ),
    "signin.no_users": (
        "Er zijn nog geen accounts. Maak de eerste beheerder aan met "
        "`python -m core.cli create-user --role admin --email ...`.",
        "There are no accounts yet. Create the first admin with "
        "`python -m core.cli create-user --role admin --email ...`.",
    ),
    "signout": ("Uitloggen", "Sign out"),
    "refresh": ("Vernieuwen", "Refresh"),
    "refresh.help": (
        "Haalt alles opnieuw op. Zonder dit zijn gegevens tot 30 seconden oud.",
        "Reads everything again. Otherwise data may be up to 30 seconds old.",
    ),
    "signed_in_as": ("Ingelogd als", "Signed in as"),
    "role.tutor": ("docent", "tutor"),
    "role.admin": ("beheerder", "admin"),
    "role.finance": ("financiën", "finance"),
    "nav.planning": ("Planning", "Planning"),
    "nav.customers": ("Klanten", "Customers"),
    "nav.finance": ("Financiën", "Finance"),
    "nav.admin": ("Beheer", "Administration"),
    "page.availability": ("Beschikbaarheid", "Availability"),
    "page.lessons": ("Lessen", "Lessons"),
    "page.contacts": ("Contacten & segmenten", "Contacts & segments"),
    "page.whitelists": ("Whitelists", "Whitelists"),
    "page.profiles": ("Planningsprofielen", "Planning profiles"),
    "page.tutors": ("Docenten", "Tutors"),
    "page.closures": ("Sluitingen", "Closures"),
    "tutors.hours": ("Werktijden per week", "Weekly working hours"),
    "tutors.hours_help": (
        "Alleen binnen deze tijden wordt les aangeboden (lokale tijd, ook na de overgang naar zomer- of wintertijd). Meerdere blokken per dag met komma's: 09:00-12:00, 13:00-17:00.",
        "Lessons are only offered within these times (local time, also across daylight saving changes). Several blocks a day with commas: 09:00-12:00, 13:00-17:00.",
    ),
    "tutors.no_hours": (
        "Geen werktijden ingesteld: het venster van het planningsprofiel geldt. Vul per dag tijden in, bijvoorbeeld 09:00-12:00, 13:00-17:00; een lege dag is dan vrij.",
        "No working hours set: the planning profile's window applies. Enter times per day, e.g. 09:00-12:00, 13:00-17:00; an empty day is then off.",
    ),
    "tutors.save": ("Werktijden opslaan", "Save working hours"),
    "tutors.saved": ("Werktijden opgeslagen.", "Working hours saved."),
    "clo.list": ("Het komende jaar", "The coming year"),
    "clo.none": ("Geen sluitingen in het komende jaar.", "No closures in the coming year."),
    "clo.name": ("Naam", "Name"),
    "clo.region": ("Regio", "Region"),
    "clo.applies": ("Geldt", "Applies"),
    "clo.all_regions": ("alle regio's", "all regions"),
    "clo.source.holidays": ("feestdag", "public holiday"),
    "clo.source.import": ("schoolvakantie", "school holiday"),
    "clo.source.admin": ("sluiting", "business closure"),
    "clo.public_pick": ("Feestdag", "Public holiday"),
    "clo.public_off": ("Geldt niet", "Does not apply"),
    "clo.public_on": ("Geldt wel", "Applies"),
    "clo.add": ("Sluiting of schoolvakantie toevoegen", "Add a closure or school holiday"),
    "clo.first": ("Eerste dag", "First day"),
    "clo.last": ("Laatste dag", "Last day"),
    "clo.add_submit": ("Toevoegen", "Add"),
    "clo.edit": ("Wijzigen of verwijderen", "Edit or remove"),
    "clo.edit_pick": ("Sluiting", "Closure"),
    "clo.save": ("Opslaan", "Save"),
    "clo.remove": ("Verwijderen", "Remove"),
    "clo.saved": ("Sluiting opgeslagen.", "Closure saved."),
    "clo.removed": ("Sluiting verwijderd.", "Closure removed."),
    "clo.import.title": ("Schoolvakanties importeren", "Import school holidays"),
    "clo.import.help": (
        "CSV met de kolommen naam, regio, van, tot (regio noord, midden of zuid, leeg = alle regio's; datums als 2027-02-20 of 20-02-2027, beide dagen inbegrepen). Je ziet eerst wat er gebeurt.",
        "CSV with the columns naam, regio, van, tot (region noord, midden or zuid, empty = all regions; dates as 2027-02-20 or 20-02-2027, both days included). You see what happens first.",
    ),
    "clo.import.submit": ("Importeer {n} schoolvakanties", "Import {n} school holidays"),
    "clo.import.done": ("{n} schoolvakanties geïmporteerd.", "{n} school holidays imported."),
    "page.payments": ("Betalingen", "Payments"),
    "page.integrations": ("Integraties", "Integrations"),
    "page.users": ("Gebruikers", "Users"),
    "page.insights": ("Inzichten", "Insights"),
    "ins.title": ("Inzichten", "Insights"),
    "ins.caption": (
        "Hoe de bot het doet: van gesprekken die tijden kregen aangeboden tot lessen die gevolgd zijn. "
        "Een gesprek telt in de week van zijn eerste aanbod in de gekozen periode.",
        "How the bot performs: from conversations that were offered times to lessons attended. "
        "A conversation counts in the week of its first offer in the chosen period.",
    ),
    "ins.segment": ("Segment", "Segment"),
    "ins.offered": ("Aangeboden", "Offered"),
    "ins.booked": ("Geboekt", "Booked"),
    "ins.paid": ("Betaald", "Paid"),
    "ins.attended": ("Gevolgd", "Attended"),
    "ins.of_offered": ("{pct} van aangeboden", "{pct} of offered"),
    "ins.funnel": ("Trechter per week", "Funnel per week"),
    "ins.by_segment": ("Per segment", "By segment"),
    "ins.rates": ("Lessen en geld in deze periode", "Lessons and money in this period"),
    "ins.cancel_rate": ("Geannuleerd", "Cancelled"),
    "ins.cancel_help": (
        "Geannuleerde lessen van alle bevestigde en geannuleerde lessen die in deze periode beginnen.",
        "Cancelled lessons out of all confirmed and cancelled lessons starting in this period.",
    ),
    "ins.no_show_rate": ("Niet verschenen", "No-show"),
    "ins.no_show_help": (
        "Niet verschenen van de lessen in deze periode die de docent heeft gemarkeerd.",
        "No-shows out of the lessons in this period that the tutor marked.",
    ),
    "ins.revenue": ("Omzet", "Revenue"),
    "ins.revenue_help": (
        "Betaald in deze periode min wat daarvan is terugbetaald.",
        "Paid in this period minus what was refunded of it.",
    ),
    "ins.refunded": ("{amount} terugbetaald", "{amount} refunded"),
    "ins.time_to_book": ("Tijd tot boeking", "Time to book"),
    "ins.time_help": (
        "Mediaan van de tijd tussen het eerste aanbod en de eerste boeking.",
        "Median time from the first offer to the first booking.",
    ),
    "ins.lessons_n": ("{n} lessen", "{n} lessons"),
    "ins.marked_n": ("{n} gemarkeerd", "{n} marked"),
    "ins.empty": (
        "Nog geen aanbod in deze periode. Elke keer dat de bot tijden aanbiedt (GET /api/v1/slots) telt "
        "hier mee; kies een andere periode of wacht op de eerste gesprekken.",
        "No offers in this period yet. Every time the bot offers times (GET /api/v1/slots) counts here; "
        "pick another period or wait for the first conversations.",
    ),
    "ins.stage": ("Stap", "Step"),
    "ins.count": ("Gesprekken", "Conversations"),
    "ins.week_revenue": ("Omzet", "Revenue"),
    "ins.none": ("—", "—"),
    "guard.denied": (
        "Je hebt geen toegang tot deze pagina ({role}).",
        "You have no access to this page ({role}).",
    ),
    "guard.signed_out": ("Je bent niet (meer) ingelogd.", "You are not signed in (any more)."),
    "error.unexpected": (
        "Er ging iets mis ({kind}). De fout is gelogd; probeer het opnieuw of meld het aan de beheerder.",
        "Something went wrong ({kind}). It was logged; try again or tell an admin.",
    ),
    "loading": ("Laden…", "Loading…"),
    "saved": ("Opgeslagen.", "Saved."),
    "none": ("— geen —", "— none —"),
    "all": ("Alle", "All"),
    "yes": ("ja", "yes"),
    "no": ("nee", "no"),
    "page_n": ("Pagina", "Page"),
    "rows_of": ("{first}–{last} van {total}", "{first}–{last} of {total}"),
    "export_csv": ("Exporteer CSV", "Export CSV"),
    "search": ("Zoeken", "Search"),
    "date_range": ("Periode", "Date range"),
    "status": ("Status", "Status"),
    "profile": ("Profiel", "Profile"),
    "tutor": ("Docent", "Tutor"),
    "contact": ("Contact", "Contact"),
    "reason": ("Reden", "Reason"),
    "note": ("Notitie", "Note"),
    # statuses
    "status.held": ("vastgehouden", "held"),
    "status.awaiting_payment": ("wacht op betaling", "awaiting payment"),
    "status.processing": ("in verwerking", "processing"),
    "status.running": ("bezig", "running"),
    "status.done": ("klaar", "done"),
    "status.partially_refunded": ("deels terugbetaald", "partly refunded"),
    "status.disputed": ("betwist", "disputed"),
    "calendar.pending": ("volgt nog", "pending"),
    "calendar.synced": ("in agenda", "in calendar"),
    "calendar.failed": ("mislukt", "failed"),
    "col.calendar": ("Agenda", "Calendar"),
    "lessons.calendar_waiting": (
        "{n} bevestigde les(sen) staan nog niet in de agenda van de docent. Het tijdstip is wel "
        "vastgelegd; de afspraak volgt zodra de agenda bereikbaar is (zie Integraties → Achtergrondtaken).",
        "{n} confirmed lesson(s) are not in the tutor's calendar yet. The time is reserved; the "
        "event follows as soon as the calendar can be reached (see Integrations → Background jobs).",
    ),
    "int.jobs": ("Achtergrondtaken", "Background jobs"),
    "int.jobs.caption": (
        "Agenda-afspraken, chatberichten en Stripe-acties worden na elke wijziging "
        "als taak uitgevoerd en herhaald tot het lukt (hoogstens een minuut wachten).",
        "Calendar events, chat messages and Stripe actions run as jobs after each "
        "change and are retried until they succeed (at most a minute apart).",
    ),
    "int.jobs.empty": ("Geen openstaande taken: alles is uitgevoerd.", "No open jobs: everything has run."),
    "int.jobs.failed": (
        "{n} taak/taken mislukt: bekijk de reden en probeer opnieuw.",
        "{n} job(s) failed: see the reason and retry.",
    ),
    "int.jobs.retry": ("Opnieuw proberen", "Retry"),
    "int.jobs.pick": ("Taak", "Job"),
    "int.jobs.retried": ("Taak {id} wordt nu opnieuw uitgevoerd.", "Job {id} runs again now."),
    "col.next": ("Volgende poging", "Next attempt"),
    "status.confirmed": ("bevestigd", "confirmed"),
    "status.needs_reschedule": ("moet verzet worden", "needs reschedule"),
    "status.cancelled": ("geannuleerd", "cancelled"),
    "status.expired": ("verlopen", "expired"),
    "status.open": ("open", "open"),
    "status.paid": ("betaald", "paid"),
    "status.failed": ("mislukt", "failed"),
    "status.refunded": ("terugbetaald", "refunded"),
    "status.pending": ("wacht", "pending"),
    "status.sent": ("verstuurd", "sent"),
    "status.processed": ("verwerkt", "processed"),
    "status.ignored": ("genegeerd", "ignored"),
    # columns
    "col.id": ("ID", "ID"),
    "col.start": ("Start", "Start"),
    "col.end": ("Einde", "End"),
    "col.date": ("Datum", "Date"),
    "col.day": ("Dag", "Day"),
    "col.week": ("Week", "Week"),
    "col.time": ("Tijd", "Time"),
    "col.status": ("Status", "Status"),
    "col.tutor": ("Docent", "Tutor"),
    "col.contact": ("Contact", "Contact"),
    "col.profile": ("Profiel", "Profile"),
    "col.series": ("Reeks", "Series"),
    "col.payment": ("Betaling", "Payment"),
    "col.amount": ("Bedrag", "Amount"),
    "col.count": ("Aantal", "Count"),
    "col.created": ("Aangemaakt", "Created"),
    "col.paid_at": ("Betaald op", "Paid at"),
    "col.expires": ("Verloopt", "Expires"),
    "col.minutes": ("Minuten", "Minutes"),
    "col.segment": ("Segment", "Segment"),
    "col.order": ("Order", "Order"),
    "col.session": ("Checkout-sessie", "Checkout session"),
    "col.lesson": ("Les", "Lesson"),
    "col.stripe": ("Stripe", "Stripe"),
    "col.name": ("Naam", "Name"),
    "col.email": ("E-mail", "E-mail"),
    "col.phone": ("Telefoon", "Phone"),
    "col.role": ("Rol", "Role"),
    "col.active": ("Actief", "Active"),
    "col.last_login": ("Laatst ingelogd", "Last login"),
    "col.identifier": ("Kenmerk", "Identifier"),
    "col.kind": ("Soort", "Kind"),
    "col.added_by": ("Toegevoegd door", "Added by"),
    "col.added_at": ("Toegevoegd op", "Added at"),
    "col.row": ("Rij", "Row"),
    "col.value": ("Waarde", "Value"),
    "col.error": ("Fout", "Error"),
    "col.why": ("Waarom", "Why"),
    "col.type": ("Type", "Type"),
    "col.received": ("Ontvangen", "Received"),
    "col.attempts": ("Pogingen", "Attempts"),
    "col.actor": ("Door", "By"),
    "col.action": ("Actie", "Action"),
    "col.entity": ("Object", "Entity"),
    "col.before": ("Voor", "Before"),
    "col.after": ("Na", "After"),
    "col.when": ("Wanneer", "When"),
    "col.conversation": ("Gesprek", "Conversation"),
    "col.text": ("Tekst", "Text"),
    "col.key": ("Sleutel", "Key"),
    "col.sent_at": ("Verstuurd", "Sent"),
    "col.subject": ("Onderdeel", "Subject"),
    "col.ok": ("OK", "OK"),
    "col.detail": ("Details", "Detail"),
    "col.fix": ("Oplossing", "Fix"),
    "col.kind_block": ("Soort", "Kind"),
    "col.override": ("Override", "Override"),
    # availability
    "avail.title": ("Beschikbaarheid", "Availability"),
    "avail.no_tutor": (
        "Er is geen agenda aan jouw account gekoppeld. Vraag een beheerder om bij de docent "
        "jouw e-mailadres ({email}) in te vullen.",
        "No calendar is linked to your account. Ask an admin to enter your e-mail address "
        "({email}) on the tutor.",
    ),
    "avail.no_tutors": (
        "Er zijn nog geen docenten. Voeg een docent toe (bijv. `python -m core.cli seed-demo`).",
        "There are no tutors yet. Add a tutor (e.g. `python -m core.cli seed-demo`).",
    ),
    "avail.no_profiles": (
        "Er zijn geen actieve planningsprofielen.",
        "There are no active planning profiles.",
    ),
    "avail.prev": ("← Vorige week", "← Previous week"),
    "avail.next": ("Volgende week →", "Next week →"),
    "avail.today": ("Deze week", "This week"),
    "avail.week_of": ("Week van", "Week of"),
    "avail.week_caption": ("Week {week}: {first} t/m {last} ({tz})", "Week {week}: {first} to {last} ({tz})"),
    "avail.kind.free": ("vrij", "free"),
    "avail.kind.held": ("vastgehouden", "held"),
    "avail.kind.confirmed": ("bevestigd", "confirmed"),
    "avail.kind.needs_reschedule": ("moet verzet worden", "needs reschedule"),
    "avail.kind.busy": ("bezet (agenda)", "busy (calendar)"),
    "avail.kind.off_hours": ("buiten werktijden", "outside working hours"),
    "avail.kind.closed": ("gesloten (feestdag, vakantie)", "closed (holiday)"),
    "avail.kind.time_off": ("vrij genomen", "time off"),
    "avail.legend": ("Soort", "Kind"),
    "avail.hour": ("Uur", "Hour"),
    "avail.free_slots": ("Vrije tijden deze week", "Free slots this week"),
    "avail.no_free": (
        "Geen vrije tijden in deze week voor dit profiel (buiten de horizon van het profiel, "
        "alles bezet of een niet-toegestane dag). Kies een andere week of een ander profiel.",
        "No free slots this week for this profile (beyond the profile's horizon, fully booked "
        "or days not allowed). Pick another week or profile.",
    ),
    "avail.calendar_error": (
        "De agenda kon niet gelezen worden, dus er worden geen vrije tijden getoond: {message}",
        "The calendar could not be read, so no free slots are shown: {message}",
    ),
    "avail.bot.title": (
        "Wat de bot deze contactpersoon nu zou aanbieden",
        "What the bot would offer this contact now",
    ),
    "avail.bot.search": ("Zoek contact (naam, telefoon, e-mail)", "Find contact (name, phone, e-mail)"),
    "avail.bot.pick": ("Contact", "Contact"),
    "avail.bot.none_found": ("Geen contacten gevonden voor deze zoekterm.", "No contacts match this search."),
    "avail.bot.hint": (
        "Typ een naam, telefoonnummer of e-mailadres om te zien welke tijden de bot zou aanbieden.",
        "Type a name, phone number or e-mail address to see what the bot would offer.",
    ),
    "avail.bot.result": (
        "Segment **{segment}** ({reason}) → profiel **{profile}**.",
        "Segment **{segment}** ({reason}) → profile **{profile}**.",
    ),
    "avail.bot.no_slots": (
        "De bot heeft nu geen tijden om aan te bieden.",
        "The bot has no slots to offer now.",
    ),
    "avail.timeoff.title": ("Vrij nemen (lokale agenda)", "Time off (local calendar)"),
    "avail.timeoff.google": (
        "Deze omgeving gebruikt Google Agenda: plan vrije tijd in Google Agenda zelf.",
        "This environment uses Google Calendar: enter time off in Google Calendar itself.",
    ),
    "avail.timeoff.from_date": ("Van (datum)", "From (date)"),
    "avail.timeoff.from_time": ("Van (tijd)", "From (time)"),
    "avail.timeoff.to_date": ("Tot (datum)", "Until (date)"),
    "avail.timeoff.to_time": ("Tot (tijd)", "Until (time)"),
    "avail.timeoff.add": ("Vrij nemen toevoegen", "Add time off"),
    "avail.timeoff.added": ("Vrije tijd toegevoegd.", "Time off added."),
    "avail.timeoff.none": ("Geen geplande vrije tijd.", "No time off planned."),
    "avail.timeoff.remove_pick": ("Vrije tijd verwijderen", "Remove time off"),
    "avail.timeoff.remove": ("Verwijderen", "Remove"),
    "avail.timeoff.removed": ("Vrije tijd verwijderd.", "Time off removed."),
    # lessons
    "lessons.title": ("Lessen", "Lessons"),
    "lessons.empty": (
        "Geen lessen gevonden met deze filters. Verruim de periode of zet statusfilters uit.",
        "No lessons match these filters. Widen the date range or clear the status filter.",
    ),
    "lessons.readonly": (
        "Alleen-lezen: je kunt lessen bekijken en exporteren.",
        "Read-only: you can view and export lessons.",
    ),
    "lessons.detail": ("Details van een les", "Lesson details"),
    "lessons.pick": ("Les", "Lesson"),
    "lessons.pick_placeholder": ("Kies een les uit de tabel hierboven", "Pick a lesson from the table above"),
    "lessons.event": ("Agenda-afspraak", "Calendar event"),
    "lessons.invite": ("Uitnodiging", "Invite"),
    "lessons.invite.none": ("geen (geen e-mailadres of lokale agenda)", "none (no e-mail or local calendar)"),
    "lessons.invite.sent": ("verstuurd", "sent"),
    "lessons.invite.refused": ("geweigerd", "refused"),
    "lessons.note": ("Agendanotitie", "Calendar note"),
    "lessons.cancel_reason": ("Reden annulering", "Cancel reason"),
    "lessons.hold_until": ("Vastgehouden tot", "Held until"),
    "lessons.description": ("Omschrijving", "Description"),
    "lessons.payments": ("Betalingen bij deze les", "Payments of this lesson"),
    "lessons.no_payment": ("Geen betaling gekoppeld.", "No payment linked."),
    "lessons.paid_by_credit": ("Betaald met lestegoed.", "Paid with a lesson credit."),
    "lessons.series_label": ("reeks {i}/{n}", "series {i}/{n}"),
    "lessons.series.title": ("Reeks #{id}: {n} lessen", "Series #{id}: {n} lessons"),
    "lessons.series.help": (
        "Wekelijkse reeks, samen betaald. Elke les wordt los geannuleerd of verzet; een tijdige "
        "annulering geeft het deel van die les terug.",
        "Weekly series, paid together. Each lesson is cancelled or moved on its own; an on-time "
        "cancel gives back that lesson's share.",
    ),
    "lessons.credit_returned": ("Het tegoed is teruggegeven.", "The credit was given back."),
    "lessons.cancel.title": ("Les annuleren", "Cancel lesson"),
    "lessons.cancel.confirm": (
        "Ja, annuleer deze les en laat het de klant weten",
        "Yes, cancel this lesson and tell the customer",
    ),
    "lessons.cancel.submit": ("Les annuleren", "Cancel lesson"),
    "lessons.cancel.consequence": ("Wat krijgt de klant terug?", "What does the customer get back?"),
    "lessons.cancel.consequence_help": (
        "Standaard wat het profiel zegt; binnen de annuleringstermijn niets.",
        "By default what the profile says; within the notice time nothing.",
    ),
    "lessons.cancel.refund": ("Geld terug", "Refund"),
    "lessons.cancel.credit": ("Les als tegoed", "Lesson as credit"),
    "lessons.cancel.none": ("Niets", "Nothing"),
    "lessons.cancel.need_confirm": (
        "Vink de bevestiging aan om te annuleren.",
        "Tick the confirmation to cancel.",
    ),
    "lessons.cancel.done": ("Les {id} is geannuleerd.", "Lesson {id} was cancelled."),
    "lessons.resched.title": ("Les verzetten", "Reschedule lesson"),
    "lessons.resched.pick": ("Nieuwe tijd", "New time"),
    "lessons.resched.submit": ("Verzetten", "Reschedule"),
    "lessons.resched.none": (
        "Er zijn geen vrije tijden bij deze docent binnen het profiel.",
        "There are no free slots with this tutor within the profile.",
    ),
    "lessons.resched.done": ("Les {id} verzet.", "Lesson {id} moved."),
    "lessons.not_yours": (
        "Je kunt alleen je eigen lessen wijzigen.",
        "You can only change your own lessons.",
    ),
    "lessons.not_active": (
        "Deze les is {status}; er valt niets meer te wijzigen.",
        "This lesson is {status}; there is nothing left to change.",
    ),
    # contacts
    "contacts.title": ("Contacten & segmenten", "Contacts & segments"),
    "contacts.search": (
        "Zoek op naam, telefoon, e-mail of contact-id",
        "Search by name, phone, e-mail or contact id",
    ),
    "contacts.empty": (
        "Geen contacten gevonden. Contacten verschijnen zodra de bot met iemand praat.",
        "No contacts found. Contacts appear once the bot talks to someone.",
    ),
    "contacts.pick": ("Contact", "Contact"),
    "contacts.segment": ("Gedetecteerd segment", "Detected segment"),
    "contacts.segment_reason": ("Waarom", "Why"),
    "contacts.profile": ("Profiel dat de bot gebruikt", "Profile the bot uses"),
    "contacts.attributes": ("Kenmerken (attributes)", "Attributes"),
    "contacts.no_attributes": ("Geen kenmerken.", "No attributes."),
    "contacts.lessons": ("Lessen per status", "Lessons per status"),
    "contacts.overrides": ("Overrides", "Overrides"),
    "credits.title": ("Lestegoed", "Lesson credits"),
    "credits.balance": ("{n} les(sen) van {minutes} min", "{n} lesson(s) of {minutes} min"),
    "credits.none": ("Nog geen tegoed of mutaties.", "No credits or changes yet."),
    "credits.kind": ("Soort", "Kind"),
    "credits.kind.purchase": ("Gekocht (bundel)", "Bought (bundle)"),
    "credits.kind.use": ("Gebruikt", "Used"),
    "credits.kind.return": ("Terug na annulering", "Returned after cancel"),
    "credits.kind.grant": ("Toegekend / correctie", "Granted / correction"),
    "credits.kind.refund": ("Ingetrokken (terugbetaling)", "Taken back (refund)"),
    "credits.delta": ("Lessen (+/−)", "Lessons (+/−)"),
    "credits.actor": ("Door", "By"),
    "credits.grant": ("Tegoed aanpassen", "Change credits"),
    "credits.grant_help": (
        "Geef lessen als tegoed (positief) of corrigeer (negatief), altijd met een reden. "
        "Het tegoed kan niet onder 0 komen.",
        "Give lessons as credit (positive) or correct (negative), always with a reason. "
        "The balance cannot go below 0.",
    ),
    "contacts.segment_override": ("Segment vastzetten", "Pin segment"),
    "contacts.profile_override": ("Profiel vastzetten", "Pin profile"),
    "contacts.save": ("Overrides opslaan", "Save overrides"),
    "contacts.details": ("Gegevens", "Details"),
    "contacts.attendance": ("Aanwezigheid", "Attendance"),
    "contacts.attendance_counts": (
        "Aanwezig: {attended} · Niet verschenen: {no_shows}",
        "Attended: {attended} · No-show: {no_shows}",
    ),
    "lessons.attendance.title": ("Nog te markeren: was de leerling er?", "To mark: did the pupil come?"),
    "lessons.attendance.help": (
        "Afgelopen lessen zonder aanwezigheid, nieuwste eerst. Eén klik per les.",
        "Past lessons without attendance, newest first. One click per lesson.",
    ),
    "lessons.attendance.attended": ("Aanwezig", "Attended"),
    "lessons.attendance.no_show": ("Niet verschenen", "No-show"),
    "lessons.attendance.done": ("Les #{id} gemarkeerd.", "Lesson #{id} marked."),
    "lessons.attendance.outcome": ("Aanwezigheid", "Attendance"),
    "contacts.details_help": (
        "Wat je hier opslaat beheert het team: de bot kan naam, e-mail en telefoon van dit contact daarna "
        "niet meer wijzigen. Een e-mailadres telt pas voor de whitelists als je het bevestigt.",
        "What you save here is maintained by staff: the bot can no longer change this contact's name, "
        "e-mail or phone. An e-mail address only counts for the whitelists once you confirm it.",
    ),
    "contacts.email_confirmed": (
        "E-mailadres bevestigd (gecontroleerd bij de klant)",
        "E-mail address confirmed (checked with the customer)",
    ),
    "contacts.save_details": ("Gegevens opslaan", "Save details"),
    "contacts.maintained_by": ("Gegevens beheerd door", "Details maintained by"),
    "contacts.by_staff": ("het team", "staff"),
    "contacts.by_bot": ("de klant via de bot (niet gecontroleerd)", "the customer via the bot (unchecked)"),
    "contacts.email_state": ("E-mail bevestigd", "E-mail confirmed"),
    # whitelists
    "wl.title": ("Whitelists", "Whitelists"),
    "wl.list": ("Lijst", "List"),
    "wl.list.weekend": ("Weekend", "Weekend"),
    "wl.list.returning_broadcast": ("Terugkerende broadcast", "Returning broadcast"),
    "wl.add.title": ("Toevoegen", "Add"),
    "wl.add.identifier": (
        "Telefoonnummer, e-mailadres of contact-id",
        "Phone number, e-mail address or contact id",
    ),
    "wl.add.submit": ("Toevoegen", "Add"),
    "wl.add.done": ("{identifier} staat nu op de lijst.", "{identifier} is now on the list."),
    "wl.add.exists": ("Dat kenmerk stond al op de lijst.", "That identifier was already on the list."),
    "wl.entries": ("Op de lijst", "On the list"),
    "wl.empty": (
        "Deze lijst is leeg. Voeg hierboven een nummer toe of importeer een CSV.",
        "This list is empty. Add a number above or import a CSV.",
    ),
    "wl.remove.pick": ("Verwijderen van de lijst", "Remove from the list"),
    "wl.remove.submit": ("Verwijderen", "Remove"),
    "wl.remove.done": ("Verwijderd.", "Removed."),
    "wl.import.title": ("CSV importeren", "Import CSV"),
    "wl.import.help": (
        "Een spreadsheet (CSV, komma of puntkomma) met telefoonnummers, e-mailadressen of "
        "contact-id's in de eerste kolom, of in een kolom met de kop 'telefoon', 'phone' of 'email'.",
        "A spreadsheet (CSV, comma or semicolon) with phone numbers, e-mail addresses or contact "
        "ids in the first column, or in a column headed 'phone', 'telefoon' or 'email'.",
    ),
    "wl.import.file": ("CSV-bestand", "CSV file"),
    "wl.import.summary": (
        "{valid} nieuw, {dupes} al aanwezig of dubbel, {invalid} ongeldig.",
        "{valid} new, {dupes} already present or repeated, {invalid} invalid.",
    ),
    "wl.import.truncated": ("Alleen de eerste {n} rijen zijn gelezen.", "Only the first {n} rows were read."),
    "wl.import.valid": ("Worden toegevoegd", "Will be added"),
    "wl.import.dupes": ("Overgeslagen (al aanwezig of dubbel)", "Skipped (already present or repeated)"),
    "wl.import.invalid": ("Ongeldige rijen (worden niet geïmporteerd)", "Invalid rows (not imported)"),
    "wl.import.submit": ("Importeer {n} nieuwe kenmerken", "Import {n} new identifiers"),
    "wl.import.nothing": ("Er is niets nieuws om te importeren.", "There is nothing new to import."),
    "wl.import.done": ("{n} kenmerken geïmporteerd.", "{n} identifiers imported."),
    # profiles
    "prof.title": ("Planningsprofielen", "Planning profiles"),
    "prof.overview": ("Overzicht", "Overview"),
    "prof.edit": ("Profiel bewerken", "Edit profile"),
    "prof.pick": ("Profiel", "Profile"),
    "prof.preview": ("Voorbeeld", "Preview"),
    "prof.save": ("Opslaan", "Save"),
    "prof.preview.title": (
        "Deze tijden zou het bewerkte profiel nu aanbieden (nog niet opgeslagen)",
        "The slots the edited profile would offer now (not saved yet)",
    ),
    "prof.preview.none": (
        "Met deze instellingen biedt het profiel nu geen enkele tijd aan.",
        "With these settings the profile offers no slot at all right now.",
    ),
    "prof.invalid": ("Veld **{label}** (`{field}`): {message}", "Field **{label}** (`{field}`): {message}"),
    "prof.saved": ("Profiel {name} opgeslagen.", "Profile {name} saved."),
    "prof.max_per_day_help": ("0 = geen maximum", "0 = no limit"),
    "prof.weekdays_all": ("Elke toegestane dag", "Every allowed day"),
    "prof.field": ("Veld", "Field"),
    "pay.count": ("aantal {n}", "count {n}"),
    "int.calendar": ("Agenda", "Calendar"),
    "int.check_results": ("Resultaat van de controle", "Check results"),
    "prof.weekdays_help": (
        "Leeg = elke dag (of ma–vr als weekenden uitgesloten zijn)",
        "Empty = every day (or Mon–Fri when weekends are excluded)",
    ),
    "prof.mapping": ("Segment → profiel", "Segment → profile"),
    "prof.mapping.save": ("Koppeling opslaan", "Save mapping"),
    "prof.mapping.saved": ("Koppeling opgeslagen.", "Mapping saved."),
    "prof.audit": ("Auditlog", "Audit log"),
    "prof.audit.empty": ("Nog geen wijzigingen vastgelegd.", "No changes recorded yet."),
    "field.duration_minutes": ("Lesduur (minuten)", "Lesson length (minutes)"),
    "field.earliest_hour": ("Vroegste uur", "Earliest hour"),
    "field.latest_hour": ("Laatste uur (einde)", "Latest hour (end)"),
    "field.min_lead_minutes": ("Minimale aanlooptijd (minuten)", "Minimum lead time (minutes)"),
    "field.days_ahead": ("Dagen vooruit", "Days ahead"),
    "field.exclude_weekends": ("Geen weekenden", "Exclude weekends"),
    "field.allowed_weekdays": ("Toegestane dagen", "Allowed weekdays"),
    "field.slot_step_minutes": ("Stap tussen starttijden (minuten)", "Step between starts (minutes)"),
    "field.max_suggestions": ("Maximaal aantal voorstellen", "Maximum suggestions"),
    "field.buffer_minutes": ("Buffer rond lessen (minuten)", "Buffer around lessons (minutes)"),
    "field.max_per_day": ("Maximaal per dag", "Maximum per day"),
    "field.public_holidays": ("Geen les op feestdagen", "No lessons on public holidays"),
    "field.school_holidays": ("Schoolvakanties", "School holidays"),
    "prof.public_holidays_help": (
        "Officiële feestdagen (HOLIDAYS_COUNTRY) worden nooit aangeboden; per feestdag uit te zetten op Sluitingen.",
        "Public holidays (HOLIDAYS_COUNTRY) are never offered; single days can be switched off on Closures.",
    ),
    "prof.school_none": ("gewoon les", "lessons as usual"),
    "prof.school_help": (
        "Kies een regio om in de schoolvakanties van die regio (Sluitingen) geen les aan te bieden.",
        "Pick a region to offer no lessons in that region's school holidays (Closures).",
    ),
    "region.noord": ("regio noord", "region north"),
    "region.midden": ("regio midden", "region central"),
    "region.zuid": ("regio zuid", "region south"),
    "field.cancel_notice_hours": (
        "Annuleren/verplaatsen via de bot tot (uur vooraf)",
        "Cancel/move through the bot until (hours before)",
    ),
    "field.on_time_cancel": ("Op tijd geannuleerd", "Cancelled on time"),
    "prof.on_time_cancel.refund": ("Geld terug", "Refund"),
    "prof.on_time_cancel.credit": ("Les als tegoed", "Lesson as credit"),
    "prof.on_time_cancel_help": (
        "Wat een klant krijgt die op tijd annuleert: het bedrag terug via Stripe, of de les als "
        "tegoed voor een volgende boeking. Een les betaald met tegoed krijgt altijd tegoed terug.",
        "What a customer who cancels on time gets: the money back through Stripe, or the lesson "
        "as credit for a next booking. A lesson paid with credit always gets its credit back.",
    ),
    "field.reminder_hours": ("Herinneringen (uren vooraf)", "Reminders (hours before)"),
    "prof.reminder_help": (
        "Hoeveel uur voor de les de klant een herinnering krijgt, bijvoorbeeld 24 of 48, 2. Leeg: geen herinneringen.",
        "How many hours before the lesson the customer is reminded, e.g. 24 or 48, 2. Empty: no reminders.",
    ),
    "prof.cancel_notice_help": (
        "Tot zoveel uur voor de les kan een klant zelf annuleren of verplaatsen via de bot; een betaalde les "
        "wordt dan volledig terugbetaald. Daarna kan alleen het team het nog regelen.",
        "Up to this many hours before the lesson a customer can cancel or move it through the bot; a paid "
        "lesson is then refunded in full. After that only staff can.",
    ),
    "field.requires_payment": ("Betaling vereist", "Requires payment"),
    "field.active": ("Actief", "Active"),
    "field.name": ("Naam", "Name"),
    # payments
    "pay.title": ("Betalingen", "Payments"),
    "pay.search": (
        "Zoek op sessie-, order- of payment-intent-id",
        "Search by session, order or payment intent id",
    ),
    "pay.period": ("Totalen per", "Totals per"),
    "pay.period.day": ("dag", "day"),
    "pay.period.week": ("week", "week"),
    "pay.chart_empty": (
        "Geen betalingen in deze periode. Kies een ruimere periode.",
        "No payments in this period. Choose a wider date range.",
    ),
    "pay.search_empty": (
        "Geen betalingen gevonden met „{q}” in deze periode.",
        "No payments found with “{q}” in this period.",
    ),
    "pay.table": ("Betalingen", "Payments"),
    "pay.covers": ("Voor", "Covers"),
    "pay.covers.lesson": ("Les", "Lesson"),
    "pay.covers.bundle": ("Bundel van {n} lessen", "Bundle of {n} lessons"),
    "pay.covers.series": ("{n} lessen (reeks)", "{n} lessons (series)"),
    "pay.quantity": ("Aantal", "Quantity"),
    "pay.invoice": ("Factuur", "Invoice"),
    "pay.invoice_link": ("Factuur ↗", "Invoice ↗"),
    "pay.empty": ("Geen betalingen met deze filters.", "No payments match these filters."),
    "pay.holds": (
        "Vastgehouden lessen die binnen 30 minuten verlopen",
        "Held lessons expiring within 30 minutes",
    ),
    "pay.holds.empty": ("Geen openstaande holds die bijna verlopen.", "No open holds about to expire."),
    "pay.resched": (
        "Betaald maar tijdstip kwijt (moet verzet worden)",
        "Paid but slot lost (needs reschedule)",
    ),
    "pay.resched.empty": (
        "Geen betaalde lessen die verzet moeten worden.",
        "No paid lessons need rescheduling.",
    ),
    "pay.disputes": ("Geschillen (chargebacks)", "Disputes (chargebacks)"),
    "pay.disputes.due_by": ("Bewijs uiterlijk", "Evidence due"),
    "pay.disputes.status": ("Status bij Stripe", "Status at Stripe"),
    "pay.disputes.help": (
        "Reageer in het Stripe-dashboard vóór de datum; de les blijft staan.",
        "Respond in the Stripe dashboard before the date; the lesson stays.",
    ),
    "pay.disputes.empty": ("Geen geschillen.", "No disputes."),
    "pay.refund_form.title": ("Terugbetalen", "Refund"),
    "pay.refund_form.help": (
        "Een betaling van deze pagina geheel of deels terugbetalen via Stripe. De status volgt zodra Stripe "
        "het bevestigt; een volledige terugbetaling van een les die nog komt, annuleert die les.",
        "Refund a payment on this page in full or in part through Stripe. The status follows once Stripe "
        "confirms it; a full refund of a lesson still to come cancels that lesson.",
    ),
    "pay.refund_form.payment": ("Betaling", "Payment"),
    "pay.refund_form.amount": ("Bedrag (€)", "Amount (€)"),
    "pay.refund_form.confirm": ("Ja, dit bedrag terugbetalen", "Yes, refund this amount"),
    "pay.refund_form.need_confirm": (
        "Vink eerst aan dat je wilt terugbetalen.",
        "Tick the box to confirm the refund first.",
    ),
    "pay.refund_form.submit": ("Terugbetalen", "Refund"),
    "pay.refund_form.done": (
        "Terugbetaling van {amount} staat klaar voor Stripe.",
        "Refund of {amount} is on its way to Stripe.",
    ),
    "pay.refund": (
        "Betaald, maar de les is geannuleerd (terugbetalen in Stripe?)",
        "Paid, but the lesson was cancelled (refund in Stripe?)",
    ),
    "pay.refund.empty": ("Geen betaalde lessen die geannuleerd zijn.", "No paid lessons were cancelled."),
    "pay.failed": ("Mislukte webhook-events", "Failed webhook events"),
    "pay.failed.empty": (
        "Geen mislukte Stripe-events. Alles is verwerkt.",
        "No failed Stripe events. All processed.",
    ),
    "pay.retry.pick": ("Event", "Event"),
    "pay.retry.submit": ("Opnieuw verwerken", "Retry"),
    "pay.retry.done": ("Event {id} opnieuw verwerkt: {result}", "Event {id} retried: {result}"),
    "pay.total": ("Totaal", "Total"),
    # integrations
    "int.title": ("Integraties", "Integrations"),
    "int.backend": ("Agenda-backend: **{kind}**", "Calendar backend: **{kind}**"),
    "int.mirror": (
        "Lokale kopie van de agenda's: tijden voor de bot komen hieruit zolang ze jonger is dan {age} s "
        "(anders wordt Google direct gevraagd); bijgewerkt elke {every} s.",
        "Local copy of the calendars: the bot's times come from it while it is younger than {age} s "
        "(otherwise Google is asked directly); updated every {every} s.",
    ),
    "int.mirror.fresh": ("bijgewerkt", "up to date"),
    "int.mirror.stale": ("verouderd — Google direct", "stale — Google asked live"),
    "int.mirror.never": ("nog niet gesynchroniseerd", "not synced yet"),
    "int.mirror.age": ("Leeftijd", "Age"),
    "int.mirror.events": ("Bezette afspraken", "Busy events"),
    "int.mirror.error": ("Laatste fout", "Last error"),
    "int.calendars": ("Agenda's van docenten", "Tutor calendars"),
    "int.check_calendar": ("Agenda's controleren", "Check calendars"),
    "int.stripe": ("Stripe", "Stripe"),
    "int.configured": ("Geconfigureerd.", "Configured."),
    "int.not_configured": ("Niet geconfigureerd; ontbreekt: {missing}", "Not configured; missing: {missing}"),
    "int.partly": (
        "Gedeeltelijk geconfigureerd; ontbreekt: {missing}",
        "Partly configured; missing: {missing}",
    ),
    "int.check_stripe": ("Stripe controleren", "Check Stripe"),
    "int.chat": ("Chatbezorging (Chatwoot)", "Chat delivery (Chatwoot)"),
    "int.chat_off": (
        "Niet geconfigureerd; berichten wachten in de outbox tot de bot ze ophaalt. Ontbreekt: {missing}",
        "Not configured; messages wait in the outbox until the bot fetches them. Missing: {missing}",
    ),
    "int.outbox_counts": ("Outbox: {counts}", "Outbox: {counts}"),
    "int.database": ("Database", "Database"),
    "int.db_url": ("URL", "URL"),
    "int.db_revision": ("Migratierevisie", "Migration revision"),
    "int.db_no_revision": (
        "geen (tabellen niet via migraties gemaakt)",
        "none (tables not created by migrations)",
    ),
    "int.health": ("Laatste status per integratie", "Last status per integration"),
    "int.health.empty": (
        "Nog geen status vastgelegd; die verschijnt zodra een proces met Google, Stripe of de "
        "chat heeft gepraat.",
        "No status recorded yet; it appears once a process has talked to Google, Stripe or the chat.",
    ),
    "int.webhook": (
        "Laatste webhook: {type} ({id}) op {when}, {status}",
        "Last webhook: {type} ({id}) at {when}, {status}",
    ),
    "int.webhook.none": ("Nog geen Stripe-webhook ontvangen.", "No Stripe webhook received yet."),
    "int.outbox": ("Outbox", "Outbox"),
    "int.outbox.empty": ("De outbox is leeg.", "The outbox is empty."),
    # users
    "users.title": ("Gebruikers", "Users"),
    "users.create": ("Account aanmaken", "Create account"),
    "users.create.submit": ("Aanmaken", "Create"),
    "users.password_once": (
        "Wachtwoord voor {email} (wordt maar één keer getoond; geef het veilig door):",
        "Password for {email} (shown only once; pass it on safely):",
    ),
    "users.manage": ("Account beheren", "Manage account"),
    "users.pick": ("Account", "Account"),
    "users.deactivate": ("Deactiveren", "Deactivate"),
    "users.activate": ("Activeren", "Activate"),
    "users.reset": ("Nieuw wachtwoord", "Reset password"),
    "users.role_save": ("Rol wijzigen", "Change role"),
    "users.done": ("Bijgewerkt.", "Updated."),
}


def lang() -> str:
    try:
        value = st.session_state.get("lang", DEFAULT_LANGUAGE)
    except Exception:  # noqa: BLE001 - outside a script run (plain unit tests)
        value = DEFAULT_LANGUAGE
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **params: Any) -> str:
    entry = S.get(key)
    if entry is None:
        return key
    text = entry[1] if lang() == "en" else entry[0]
    return text.format(**params) if params else text


def calendar_label(sync: str | None) -> str:
    """A lesson's calendar state for people: an empty cell when there is nothing to sync."""
    return "" if sync is None else tr(f"calendar.{sync}")


def status_label(status: str | None) -> str:
    return "" if status is None else tr(f"status.{status}") if f"status.{status}" in S else status


def language_picker() -> None:
    """The sidebar language select; its key is the language the rest of the run reads."""
    if "lang" not in st.session_state:
        st.session_state["lang"] = DEFAULT_LANGUAGE
    # A fixed bilingual label: a label that changes with the language would make a new widget.
    st.sidebar.selectbox("Taal / Language", list(LANGUAGES), format_func=LANGUAGES.__getitem__, key="lang")
