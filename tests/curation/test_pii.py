"""PII scrubbing on a labelled set of more than 300 strings (no database)."""

from __future__ import annotations

from curation import pii
from tests.curation.pii_cases import cases


def _evaluate() -> tuple[int, int, int, list[str]]:
    true_positive = expected = found = 0
    misses = []
    for text, labels in cases():
        matches = pii.find_pii(text)
        found += len(matches)
        spans = []
        for kind, value in labels:
            start = text.index(value)
            spans.append((kind, start, start + len(value)))
        expected += len(spans)
        for kind, start, end in spans:
            if any(m.kind == kind and m.start < end and m.end > start for m in matches):
                true_positive += 1
            else:
                misses.append(f"missed {kind} in {text!r}: {matches}")
        for m in matches:
            if not any(m.kind == kind and m.start < end and m.end > start for kind, start, end in spans):
                misses.append(f"false {m.kind} {text[m.start : m.end]!r} in {text!r}")
    return true_positive, expected, found, misses


def test_the_labelled_set_is_big_and_mixed():
    labelled = cases()
    assert len(labelled) >= 300
    assert sum(1 for _, labels in labelled if not labels) >= 80
    assert {kind for _, labels in labelled for kind, _ in labels} == set(pii.PLACEHOLDERS)


def test_recall_and_precision_on_the_labelled_set():
    true_positive, expected, found, problems = _evaluate()
    recall, precision = true_positive / expected, true_positive / found
    assert recall >= 0.99, problems
    assert precision >= 0.97, problems


def test_scrub_replaces_values_with_typed_placeholders():
    text, counts = pii.scrub("Mail bob@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958.")
    assert text == "Mail [EMAIL], card [CREDIT_CARD], call [PHONE]."
    assert counts == {"EMAIL": 1, "CREDIT_CARD": 1, "PHONE": 1}


def test_checksums_decide_cards_and_ibans():
    assert pii.scrub("card 4111 1111 1111 1112")[1] == {}
    assert pii.scrub("IBAN DE89 3704 0044 0532 0130 00")[1] == {"IBAN": 1}
    assert pii.scrub("IBAN DE88 3704 0044 0532 0130 00")[1] == {}


def test_no_value_survives_scrubbing():
    for text, labels in cases():
        clean, _ = pii.scrub(text)
        for _, value in labels:
            assert value not in clean, (text, clean)
