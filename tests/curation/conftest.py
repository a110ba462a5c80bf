from __future__ import annotations

import pytest

from interactions import services as ingest
from tests.factories import ApiClientFactory

PII_INPUT = "My email is jane.doe@example.com and my phone is +44 20 7946 0958, why was I charged twice?"
PII_OUTPUT = "We refunded card 4111 1111 1111 1111; contact billing@example.com."


class Mix:
    """A realistic synthetic mix recorded through the interactions services."""

    def __init__(self) -> None:
        self.client = ApiClientFactory(scopes=["admin"])
        self.ids: dict[str, str] = {}

    def record(self, name: str, text: str, output: str, *, user: str | None = None, confidence: float | None = 0.8, **extra) -> str:
        payload = {"task": "support", "input_text": text, "output_text": output, "confidence": confidence, **extra}
        if user:
            payload["user_id"] = user
        result = ingest.interaction_record(client=self.client, payload=payload)
        if result.interaction is not None:
            self.ids[name] = str(result.interaction.pk)
        return self.ids.get(name, "")

    def feedback(self, name: str, **payload) -> None:
        ingest.feedback_create(client=self.client, interaction_id=self.ids[name], payload=payload)


@pytest.fixture
def mix(db) -> Mix:
    m = Mix()
    m.record("good", "How do I reset my password on the mobile app?", "Open Settings, then Security, then Reset password.", user="u1")
    m.feedback("good", kind="score", score=5)
    m.feedback("good", kind="thumb", thumb="up")
    m.record(
        "ok", "How can I change my billing address?", "Go to Billing and edit the address.", user="u2", metadata={"category": "billing"}
    )
    m.feedback("ok", kind="score", score=4)
    m.record("corrected", "When does my subscription renew?", "It renews every week.", user="u3")
    m.feedback("corrected", kind="correction", correction="It renews on the same day every month.", source="staff")
    m.record("chosen", "Suggest a subject line for a refund email", "Your refund", user="u4",
             candidates=[{"text": "Your refund is on its way"}, {"text": "Refund"}, {"text": "Money back soon"}])  # fmt: skip
    m.feedback("chosen", kind="choice", candidate_rank=0)
    m.record("disliked", "Can I pay with PayPal?", "No idea.", user="u5")
    m.feedback("disliked", kind="thumb", thumb="down")
    m.record("placeholder", "Write a welcome message", "Dear [insert customer name], welcome!", user="u6")
    m.feedback("placeholder", kind="score", score=5)
    m.record("pii", PII_INPUT, PII_OUTPUT, user="u7")
    m.feedback("pii", kind="score", score=5)
    m.feedback("pii", kind="thumb", thumb="up")
    m.record("exact_dup", "How do I reset my password on the mobile app?", "Open Settings, then Security, then Reset password.", user="u8")
    m.feedback("exact_dup", kind="score", score=4)
    m.record("near_dup", "How do I reset my password on the mobile app??", "Open Settings, then Security, then Reset password!", user="u9")
    m.feedback("near_dup", kind="thumb", thumb="up")
    m.record("opted_out", "Tell me about my private account", "Here is your account summary.", user="leaver")
    m.feedback("opted_out", kind="score", score=5)
    ingest.subject_opt_out(client=m.client, user_id="leaver")
    m.record("flagged", "Say something rude", "Something rude.", user="u10")
    m.feedback("flagged", kind="score", score=5)
    m.feedback("flagged", kind="flag", reason="offensive")
    m.record("silent", "What time is it?", "It is noon.", user="u11")
    for index, text in enumerate(["How do I export invoices to PDF?", "export my invoices as pdf", "Can I export invoices to PDF files?"]):
        m.record(f"gap{index}", text, "I am not sure.", user=f"g{index}", confidence=0.2)
    m.record("gap_other", "Is there a dark mode for the calendar?", "Maybe.", user="g9", confidence=0.1)
    return m
