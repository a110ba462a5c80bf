"""Contact data and secrets: the fast first pass of PII detection (regular expressions and checksums).

E-mail addresses, phone numbers (international and common national formats), credit card numbers
(Luhn-checked), IBANs (mod-97-checked), IPv4/IPv6 addresses, URLs that carry credentials or tokens,
common API-key and secret shapes, and postal codes in an address context. Plain values in and out;
`curation.pii` merges these candidates with the other detectors' and resolves overlaps.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Match:
    kind: str
    start: int
    end: int


_SECRET_PATTERNS = [
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----",
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}",
    r"\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
    r"\blp_[A-Za-z0-9_-]{30,}",
    r"\bhf_[A-Za-z0-9]{30,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
]
SECRET_RE = re.compile("|".join(f"(?:{p})" for p in _SECRET_PATTERNS))
# "password: hunter2", "api_key=abc123", "my password is hunter22": the value after a secret-ish name
# ("is" only when the value holds a digit, so "the password is incorrect" stays).
_SECRET_NAME = r"(?i:\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|password|passwd|pwd|client[_-]?secret))"  # noqa: S105
SECRET_ASSIGNMENT_RE = re.compile(
    rf"{_SECRET_NAME}\s*(?:[:=]\s*[\"']?(?P<value>[^\s\"',;]{{6,}})|\s(?i:is)\s+[\"']?(?P<said>(?=[^\s\"',;]*\d)[^\s\"',;]{{6,}}))"
)
EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
URL_CREDENTIALS_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s]+")
URL_TOKEN_RE = re.compile(
    r"\bhttps?://[^\s?#]+\?[^\s#]*?\b(?:token|access_token|id_token|api_key|apikey|key|secret|password|auth|sig|signature|"
    r"session|sessionid|sid|code|jwt)=[^\s&#]+[^\s]*",
    re.IGNORECASE,
)
CARD_RE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
IPV4_RE = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
VERSION_CONTEXT_RE = re.compile(r"(?i)(?:\bv|version\s*|release\s*|build\s*|firmware\s*)$")
PHONE_INTL_RE = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){1,2}(?:[ .-]?\d{2,4}){1,4}(?!\w)")
PHONE_NATIONAL_RE = re.compile(
    r"(?<![\w-])(?:\(\d{2,5}\)[ .-]?\d{3,4}[ .-]?\d{3,4}|\d{3}[.-]\d{3}[.-]\d{4}|0\d{1,4}(?:[ .-]\d{2,4}){2,4})(?![\w-])"
)
PHONE_CONTEXT_RE = re.compile(r"(?i)\b(?:phone|tel|telephone|call|mobile|cell|whatsapp|fax|sms|text me|number|reach me)\b[^.\n]{0,25}$")
PHONE_BARE_RE = re.compile(r"(?<![\w-])\d{3}[ ]?\d{3}[ ]?\d{4}(?![\w-])")
DATE_LIKE_RE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")

_STREET = (
    r"(?:street|st\.|avenue|ave\.?|road|rd\.|boulevard|blvd\.?|pkwy|parkway|lane|ln\.|drive|dr\.|way|court|ct\.|place|"
    r"pl\.|square|loop|strasse|straße|str\.|gasse|weg|platz|rue|avenida|calle|via|laan|straat|plein|gracht)"
)
# An address: a house number next to a street word ("10 Downing Street", "Hauptstraße 5",
# "Via Roma 10"), or "Name 12, " right before the code.
_ADDRESS = (
    rf"(?:\b\d+[A-Za-z]?\s+(?:[\w'-]+\s+){{0,3}}{_STREET}\b|{_STREET}\s+(?:[\w'-]+\s+){{0,2}}\d+[A-Za-z]?\b"
    rf"|\b[A-Z][\w'-]+\s+\d+[a-z]?,\s*$)"
)
_POSTAL_WORD = r"\b(?:zip(?: code)?|postal code|postcode|post code|plz|code postal)\b[:\s#]*(?:is\s+)?$"
POSTAL_CONTEXT_RE = re.compile(rf"(?i)(?:{_POSTAL_WORD}|{_ADDRESS}[^\n]{{0,60}}$)")
US_ZIP_RE = re.compile(r"(?<![\w-])\d{5}(?:-\d{4})?(?![\w-])")
EU_POSTAL_RE = re.compile(r"(?<![\w-])(?:\d{4,5}|\d{2}-\d{3}|\d{3} \d{2})(?= [A-ZÄÖÜ][a-zäöüß]+)")
UK_POSTCODE_RE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")
STATE_ZIP_RE = re.compile(r",\s*[A-Z]{2}\s+$")


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for char in reversed(digits):
        number = int(char) * (2 if double else 1)
        total += number - 9 if number > 9 else number
        double = not double
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _cards(text: str) -> list[Match]:
    found = []
    for m in CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1:
            found.append(Match("CREDIT_CARD", m.start(), m.end()))
    return found


def _ips(text: str) -> list[Match]:
    found = [Match("IP", m.start(), m.end()) for m in IPV4_RE.finditer(text) if not VERSION_CONTEXT_RE.search(text[: m.start()])]
    for m in IPV6_RE.finditer(text):
        candidate = m.group().split("%")[0]
        groups = [g for g in candidate.split(":") if g]
        if candidate.count(":") < 2 or (len(groups) < 2 and candidate != "::1"):
            continue  # "a[::2]" and "12:30" are not addresses
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        found.append(Match("IP", m.start(), m.end()))
    return found


def _phones(text: str) -> list[Match]:
    found = [Match("PHONE", m.start(), m.end()) for m in PHONE_INTL_RE.finditer(text) if len(re.sub(r"\D", "", m.group())) >= 7]
    for m in PHONE_NATIONAL_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 7 <= len(digits) <= 13 and not DATE_LIKE_RE.match(m.group()):
            found.append(Match("PHONE", m.start(), m.end()))
    for m in PHONE_BARE_RE.finditer(text):
        if PHONE_CONTEXT_RE.search(text[: m.start()]):
            found.append(Match("PHONE", m.start(), m.end()))
    return found


def _postal_codes(text: str) -> list[Match]:
    found = []
    for m in US_ZIP_RE.finditer(text):
        before = text[max(0, m.start() - 80) : m.start()]
        if STATE_ZIP_RE.search(before) or POSTAL_CONTEXT_RE.search(before):
            found.append(Match("POSTAL_CODE", m.start(), m.end()))
    for m in EU_POSTAL_RE.finditer(text):
        before = text[max(0, m.start() - 80) : m.start()]
        if POSTAL_CONTEXT_RE.search(before):
            found.append(Match("POSTAL_CODE", m.start(), m.end()))
    for m in UK_POSTCODE_RE.finditer(text):
        before = text[max(0, m.start() - 80) : m.start()]
        if POSTAL_CONTEXT_RE.search(before) or (re.search(r"\b[A-Z][a-z]+,?\s+$", before) and re.search(r"\d", before)):
            found.append(Match("POSTAL_CODE", m.start(), m.end()))
    return found


# Every kind needs one of these to match at all: texts without any skip the full scan.
MAYBE_PII_RE = re.compile(
    r"[@\d]|://|-----BEGIN|\b(?:sk|ghp|gho|ghu|ghs|ghr|github_pat|xox[abposr]|AKIA|ASIA|AIza|pk|rk|lp|hf|eyJ)[-_]?|(?i:key|secret|token|pass|pwd)"
)


def candidates(text: str) -> list[Match]:
    """Every contact or secret match in text; they may overlap (the caller resolves that)."""
    if not MAYBE_PII_RE.search(text):
        return []
    found: list[Match] = []
    found += [Match("SECRET", m.start(), m.end()) for m in SECRET_RE.finditer(text)]
    for m in SECRET_ASSIGNMENT_RE.finditer(text):
        group = "value" if m.group("value") else "said"
        found.append(Match("SECRET", m.start(group), m.end(group)))
    found += [Match("URL", m.start(), m.end()) for m in URL_CREDENTIALS_RE.finditer(text)]
    found += [Match("URL", m.start(), m.start() + len(m.group().rstrip(").,;:!?'\"]"))) for m in URL_TOKEN_RE.finditer(text)]
    found += [Match("EMAIL", m.start(), m.end()) for m in EMAIL_RE.finditer(text)]
    found += [Match("IBAN", m.start(), m.end()) for m in IBAN_RE.finditer(text) if iban_ok(m.group())]
    found += _cards(text)
    found += _ips(text)
    found += _phones(text)
    found += _postal_codes(text)
    return found
