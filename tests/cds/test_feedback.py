"""Feedback: accepted / overridden cards with reasons land in the database, once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from smartapp.cds.feedback import cds_feedback
from tests.cds.conftest import ISS, SERVICE, Stack

PATH = f"/cds-services/{SERVICE}/feedback"


def rows(stack: Stack, card: str) -> list[dict[str, Any]]:
    engine = stack.app.state.services.engine

    async def read() -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(cds_feedback).where(cds_feedback.c.card_uuid == card).order_by(cds_feedback.c.id)
            )
            return [dict(row._mapping) for row in result]

    # The app's engine belongs to the server thread's loop; a separate loop is fine for aiosqlite reads.
    return asyncio.run(read())


def test_overridden_and_accepted_feedback_is_stored_once(stack: Stack) -> None:
    card = "0b0f7a1c-54d2-5f2e-9a0b-8f1e2d3c4b5a"
    body = {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-25T10:15:00Z",
                "overrideReason": {
                    "reason": {
                        "system": "urn:secondlook:cds:override-reason",
                        "code": "already-reviewed",
                        "display": "Second opinion already obtained or requested",
                    },
                    "userComment": "Sent to sarcoma center last week",
                },
            },
            {
                "card": card,
                "outcome": "accepted",
                "outcomeTimestamp": "2026-11-25T10:20:00+01:00",
                "acceptedSuggestions": [],
            },
        ]
    }
    first = stack.call(body, path=PATH)
    assert first.status_code == 200 and first.json() == {}
    assert stack.call(body, path=PATH).status_code == 200  # clients may repeat feedback
    stored = rows(stack, card)
    assert [(r["outcome"], r["outcome_timestamp"]) for r in stored] == [
        ("overridden", "2026-11-25T10:15:00+00:00"),
        ("accepted", "2026-11-25T09:20:00+00:00"),
    ]
    assert stored[0]["override_code"] == "already-reviewed"
    assert stored[0]["override_display"] == "Second opinion already obtained or requested"
    assert stored[0]["user_comment"] == "Sent to sarcoma center last week"
    assert stored[0]["client_iss"] == ISS and stored[0]["service_id"] == SERVICE
    assert stored[0]["received_at"] is not None


def test_feedback_needs_its_own_audience(stack: Stack) -> None:
    body = {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-25T10:15:00Z"}]}
    token = stack.token(f"/cds-services/{SERVICE}")
    assert stack.call(body, path=PATH, token=token).status_code == 401


def test_invalid_feedback_is_refused(stack: Stack) -> None:
    for body in (
        {"feedback": []},
        {"feedback": [{"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-25T10:15:00Z"}]},
        {"feedback": [{"card": "c", "outcome": "accepted"}]},
    ):
        response = stack.call(body, path=PATH)
        assert response.status_code == 400, body
