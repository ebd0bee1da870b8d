"""Drive the chatbot's side of Lesplanner against a running receiver, step by step.

    segment → slots → book → (customer pays at the printed URL) → poll the outbox

Run `make run` (or `uvicorn receiver.main:app`) with BOT_API_TOKEN set, then:

    .venv/bin/python examples/bot_flow.py --url http://127.0.0.1:8000 --token "$BOT_API_TOKEN" \
        --conversation 4242 --contact 501 --name "Sanne de Vries"

With `--bundle 5` the customer first buys 5 prepaid lessons (60 minutes, `--minutes 90` for
longer ones): the script prints the bundle's payment link, waits until the credits arrive, and
the booking that follows is confirmed with a credit instead of a payment link.

With `--series 6` the customer books the first offered slot every week for 6 weeks: the script
asks the dry run first, shows which weeks are free or taken (with alternatives), then books the
free weeks (`skip` = the taken ones) with one payment link for all of them.

Each step prints what the bot would do with the answer. Without Chatwoot configured the
confirmation waits in the outbox; this script shows it and acknowledges it, as a bot would
after showing it to the customer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import httpx


def show_error(response: httpx.Response) -> None:
    detail = (
        response.json().get("detail")
        if response.headers.get("content-type", "").startswith("application/json")
        else response.text
    )
    print(f"  ✗ {response.status_code}: {detail}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Walk through the bot flow against a receiver.")
    parser.add_argument("--url", default=os.environ.get("RECEIVER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("BOT_API_TOKEN"), help="BOT_API_TOKEN")
    parser.add_argument("--conversation", default="demo-conversation-1")
    parser.add_argument("--contact", default="demo-contact-1")
    parser.add_argument("--name", default="Demo Klant")
    parser.add_argument("--profile", default=None, help="planning profile (default: the segment decides)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to poll for the confirmation")
    parser.add_argument(
        "--manage",
        action="store_true",
        help="once confirmed, look at the lessons, move this one, then ask what a cancel would do",
    )
    parser.add_argument("--bundle", type=int, default=0, help="first buy this many prepaid lessons (2-20)")
    parser.add_argument("--minutes", type=int, default=60, help="lesson length of the bundle: 60 or 90")
    parser.add_argument(
        "--series", type=int, default=0, help="book the first slot weekly for this many weeks (2-12)"
    )
    args = parser.parse_args()
    if not args.token:
        parser.error("give --token or set BOT_API_TOKEN")

    with httpx.Client(
        base_url=args.url, headers={"Authorization": f"Bearer {args.token}"}, timeout=30
    ) as api:
        # 1. Who is this? A contact seen for the first time is unknown (404) until step 2.
        response = api.get(f"/api/v1/contacts/{args.contact}/segment")
        if response.status_code == 200:
            segment = response.json()
            print(f"1. Segment: {segment['segment']} → profile {segment['profile']} ({segment['reason']})")
        elif response.status_code == 404:
            print("1. Segment: a new contact (registered with the first slot request)")
        else:
            show_error(response)
            return 1

        if args.bundle and buy_bundle(api, args) != 0:
            return 1

        # 2. Which times can we offer?
        params = {"conversation_id": args.conversation, "contact_id": args.contact}
        if args.profile:
            params["profile"] = args.profile
        response = api.get("/api/v1/slots", params=params)
        if response.status_code != 200:
            show_error(response)
            return 1
        offer = response.json()
        print(f"2. Slots for profile '{offer['profile']}' ({offer['timezone']}):")
        for n, slot in enumerate(offer["slots"], 1):
            print(f"   {n}. {slot['start']} – {slot['end'][11:16]}")
        if not offer["slots"]:
            print("   none free; ask the customer for another week")
            return 0

        # 3. The customer picks the first one.
        slot = offer["slots"][0]
        if args.series:
            return book_series(api, args, slot)
        booking = {
            "conversation_id": args.conversation,
            "contact_id": args.contact,
            "start": slot["start"],
            "end": slot["end"],
            "title": f"Les {args.name}",
            "description": "Geboekt via de chatbot",
            "contact": {"name": args.name},
        }
        if args.profile:
            booking["profile"] = args.profile
        response = api.post("/api/v1/bookings", json=booking)
        if response.status_code == 409:
            taken = response.json()
            print(f"3. Taken: {taken['detail']} Alternatives: {[a['start'] for a in taken['alternatives']]}")
            return 0
        if response.status_code not in (200, 201):
            show_error(response)
            return 1
        lesson = response.json()
        print(
            f"3. Lesson {lesson['id']} is {lesson['status']} with {lesson['tutor']} at {lesson['start']}"
            + (" (the same booking as before)" if response.status_code == 200 else "")
        )

        # 4. Paid lessons are held until Stripe says paid.
        if lesson["status"] == "held":
            print(f"4. Send the customer this payment link (held until {lesson['hold_expires_at']}):")
            print(f"   {lesson['payment_url']}")
        else:
            print("4. No payment needed; the lesson is confirmed.")

        # 5. The confirmation arrives in the outbox (or is delivered to Chatwoot directly).
        print("5. Waiting for messages for this conversation (Ctrl-C to stop) ...")
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            messages = api.get(f"/api/v1/conversations/{args.conversation}/messages").json()
            for message in messages:
                print(f"   → {message['key']}: {message['text']}")
                api.post(f"/api/v1/conversations/{args.conversation}/messages/{message['id']}/ack")
            if any(m["key"] in ("payment_success_message", "booking_confirmed") for m in messages):
                return manage(api, args.conversation, lesson, offer["slots"]) if args.manage else 0
            time.sleep(2)
        sent = api.get(
            f"/api/v1/conversations/{args.conversation}/messages", params={"status": "sent"}
        ).json()
        if sent:
            print(f"   {len(sent)} message(s) already delivered (Chatwoot): {[m['key'] for m in sent]}")
        else:
            print("   nothing yet: has the customer paid?")
    return 0


def manage(api: httpx.Client, conversation: str, lesson: dict, slots: list[dict]) -> int:
    """6-8: what a customer may do afterwards: see their lessons, move one, cancel one."""
    lessons = api.get(f"/api/v1/conversations/{conversation}/lessons").json()["lessons"]
    for item in lessons:
        terms = item["cancel_now"]
        print(
            f"6. Lesson {item['id']} {item['status']} at {item['start']}; cancel/move until {item['cancel_until']}"
            f" (now: {'allowed' if terms['allowed'] else 'only staff'}, {terms['consequence']})"
        )
    other = next((s for s in slots if s["start"] != lesson["start"]), None)
    if other is not None:
        moved = api.post(
            f"/api/v1/lessons/{lesson['id']}/reschedule",
            json={"conversation_id": conversation, "start": other["start"], "end": other["end"]},
        )
        if moved.status_code != 200:
            show_error(moved)
        else:
            print(
                f"7. Moved to {moved.json()['start']} (same lesson, same payment, the calendar event moved)"
            )
    dry = api.post(
        f"/api/v1/lessons/{lesson['id']}/cancel", json={"conversation_id": conversation, "dry_run": True}
    )
    if dry.status_code != 200:
        show_error(dry)
        return 1
    consequence = dry.json()["consequence"]
    money = {
        "refund": f"{(consequence['amount'] or 0) / 100:.2f} {(consequence['currency'] or '').upper()} back",
        "credit": f"the lesson back as a credit ({consequence['minutes']} minutes)",
    }.get(consequence["kind"], "nothing to refund")
    print(f"8. A cancel now would give {money}; ask the customer before sending it without dry_run.")
    return 0


def book_series(api: httpx.Client, args: argparse.Namespace, slot: dict) -> int:
    """3-4 for a weekly series: ask which weeks are free, book those with one payment link."""
    request = {
        "conversation_id": args.conversation,
        "contact_id": args.contact,
        "start": slot["start"],
        "end": slot["end"],
        "weeks": args.series,
        "title": f"Les {args.name}",
    }
    if args.profile:
        request["profile"] = args.profile
    response = api.post("/api/v1/series", json={**request, "dry_run": True})
    if response.status_code != 200:
        show_error(response)
        return 1
    taken = []
    print(f"3. A series of {args.series} weeks from {slot['start']}:")
    for week in response.json()["weeks"]:
        line = f"   week {week['week']}: {week['start']} {week['status']}"
        if week["status"] == "taken":
            taken.append(week["week"])
            line += f" ({week['reason']}); instead: {[a['start'] for a in week['alternatives'][:3]]}"
        print(line)
    if args.series - len(taken) < 2:
        print("   fewer than 2 weeks free: offer single lessons instead")
        return 0
    response = api.post("/api/v1/series", json={**request, "skip": taken})
    if response.status_code == 409:  # a week was taken since the dry run: nothing was booked
        print(f"4. {response.json()['detail']} Ask again.")
        return 0
    if response.status_code not in (200, 201):
        show_error(response)
        return 1
    booked = response.json()
    print(
        f"4. Series {booked['series_id']}: {len(booked['lessons'])} lessons, skipped weeks {taken or 'none'}"
    )
    if booked["payment_url"]:
        amount = (booked["amount"] or 0) / 100
        print(f"   one payment of {amount:.2f} {(booked['currency'] or '').upper()} for all of them:")
        print(f"   {booked['payment_url']} (held until {booked['hold_expires_at']})")
    else:
        print("   no payment needed; every lesson is confirmed")
    print("   each lesson can later be moved or cancelled on its own (GET .../lessons)")
    return 0


def buy_bundle(api: httpx.Client, args: argparse.Namespace) -> int:
    """1b. The customer buys a bundle; the bot waits until the credits are there."""
    response = api.post(
        "/api/v1/bundles",
        json={
            "conversation_id": args.conversation,
            "contact_id": args.contact,
            "minutes": args.minutes,
            "lessons": args.bundle,
        },
    )
    if response.status_code not in (200, 201):
        show_error(response)
        return 1
    bundle = response.json()
    print(f"1b. Bundle of {bundle['lessons']} × {bundle['minutes']} min: send the customer {bundle['url']}")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        credits = api.get(f"/api/v1/contacts/{args.contact}/credits").json()
        if credits["balance"].get(str(args.minutes), 0) > 0:
            print(f"    credits now: {credits['balance']} (total {credits['total']})")
            return 0
        time.sleep(2)
    print("    no credits yet: has the customer paid? The booking below will ask for payment.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
