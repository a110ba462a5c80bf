"""A labelled PII set: (text, [(kind, value), ...]). Seeded, so the set is the same every run.

Positives of every kind in several formats and sentence positions, and tricky negatives:
version numbers, dates, times, order ids, amounts, hashes, UUIDs, ISBNs, coordinates.
"""

from __future__ import annotations

import random
import re
import string

RNG = random.Random(20261122)


def _luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(RNG.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        candidate = body + check
        total, double = 0, False
        for char in reversed(candidate):
            n = int(char) * (2 if double else 1)
            total += n - 9 if n > 9 else n
            double = not double
        if total % 10 == 0:
            return candidate
    raise AssertionError


def _iban(country: str, bban_length: int) -> str:
    bban = "".join(RNG.choice(string.digits) for _ in range(bban_length))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy"]
DOMAINS = ["example.com", "mail.example.org", "company.co.uk", "uni-berlin.de", "startup.io", "gmail.com"]
TEMPLATES = ["Contact me at {v} please.", "{v}", "My details: {v}, thanks", "Reach out ({v}) tomorrow", "Is {v} still valid?"]


def _emails() -> list[tuple[str, str]]:
    out = []
    for i in range(40):
        name = RNG.choice(FIRST) + RNG.choice(["", ".smith", "_99", "+news", str(i)])
        out.append(("EMAIL", f"{name}@{RNG.choice(DOMAINS)}"))
    return out


def _phones() -> list[tuple[str, str]]:
    d = lambda n: "".join(RNG.choice(string.digits) for _ in range(n))  # noqa: E731
    formats = [
        lambda: f"+1 415 {d(3)} {d(4)}",
        lambda: f"+1-202-{d(3)}-{d(4)}",
        lambda: f"+44 20 {d(4)} {d(4)}",
        lambda: f"+49 30 {d(6)}",
        lambda: f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+91 {d(5)} {d(5)}",
        lambda: f"+81 3-{d(4)}-{d(4)}",
        lambda: f"({d(3)}) {d(3)}-{d(4)}",
        lambda: f"{RNG.randint(200, 999)}-{d(3)}-{d(4)}",
        lambda: f"{RNG.randint(200, 999)}.{d(3)}.{d(4)}",
        lambda: f"020 {d(4)} {d(4)}",
        lambda: f"06 {d(2)} {d(2)} {d(2)} {d(2)}",
        lambda: f"+31 6 {d(8)}",
    ]
    return [("PHONE", formats[i % len(formats)]()) for i in range(40)]


def _cards() -> list[tuple[str, str]]:
    out = []
    for i in range(30):
        prefix, length = RNG.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("4", 13)])
        number = _luhn_complete(prefix, length)
        style = i % 3
        out.append(("CREDIT_CARD", number if style == 0 else _group(number) if style == 1 else "-".join(_group(number).split())))
    return out


def _ibans() -> list[tuple[str, str]]:
    out = []
    for i in range(20):
        country, length = RNG.choice([("DE", 18), ("FR", 23), ("GB", 18), ("NL", 14), ("ES", 20), ("IT", 23)])
        if country in ("GB", "NL"):
            bank = "".join(RNG.choice(string.ascii_uppercase) for _ in range(4))
            iban = _iban_alpha(country, bank, length - 4)
        else:
            iban = _iban(country, length)
        out.append(("IBAN", iban if i % 2 else _group(iban)))
    return out


def _iban_alpha(country: str, bank: str, digits: int) -> str:
    bban = bank + "".join(RNG.choice(string.digits) for _ in range(digits))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _ips() -> list[tuple[str, str]]:
    v4 = [f"{RNG.randint(1, 223)}.{RNG.randint(0, 255)}.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}" for _ in range(30)]
    v6 = [
        "2001:db8::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "::1",
        "2a00:1450:4001:82b::200e", "fd00::abcd:1234", "2001:db8:0:1234::5", "2606:4700:4700::1111",
        "2001:4860:4860::8888", "fe80::a00:27ff:fe4e:66a1", "2001:db8:a::123", "2400:cb00:2048:1::c629:d7a2",
        "2001:db8:1::ab9:C0A8:102", "2620:fe::fe", "2001:db8:3333:4444:5555:6666:7777:8888",
    ]  # fmt: skip
    return [("IP", v) for v in v4 + v6]


def _urls() -> list[tuple[str, str]]:
    tok = lambda: "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(24))  # noqa: E731
    out = []
    for i in range(10):
        out.append(("URL", f"https://{RNG.choice(FIRST)}:{tok()[:10]}@db{i}.example.com/admin"))
        param = RNG.choice(["token", "access_token", "api_key", "sig", "code", "password", "session"])
        out.append(("URL", f"https://app.example.com/callback?user=7&{param}={tok()}"))
    out.append(("URL", "postgres://admin:s3cretPass@10.0.0.5:5432/prod"))
    out.append(("URL", "redis://default:Zx9vLq2@cache.internal:6379/0"))
    return out


def _secrets() -> list[tuple[str, str]]:
    tok = lambda n, chars=string.ascii_letters + string.digits: "".join(RNG.choice(chars) for _ in range(n))  # noqa: E731
    out = []
    for _ in range(5):
        out += [
            ("SECRET", f"sk-{tok(40)}"),
            ("SECRET", f"ghp_{tok(36)}"),
            ("SECRET", f"AKIA{tok(16, string.ascii_uppercase + string.digits)}"),
            ("SECRET", f"xoxb-{tok(12, string.digits)}-{tok(24)}"),
            ("SECRET", f"eyJ{tok(20)}.eyJ{tok(30)}.{tok(43)}"),
            ("SECRET", f"sk_live_{tok(24)}"),
        ]
    return out


SECRET_ASSIGNMENTS = [
    ("password: hunter2!", "hunter2!"), ("api_key=AbC123xyz789", "AbC123xyz789"), ("my password is Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("export SECRET_KEY='q9w8e7r6t5y4'", "q9w8e7r6t5y4"), ("token = 7f3a9c2e1b4d", "7f3a9c2e1b4d"), ("pwd: letmein99", "letmein99"),
    ("client_secret=ZXhhbXBsZXNlY3JldA", "ZXhhbXBsZXNlY3JldA"), ("the access_token is 9c8b7a6f5e4d", "9c8b7a6f5e4d"),
]  # fmt: skip

POSTAL = [
    ("10 Downing Street, London SW1A 2AA", "SW1A 2AA"), ("221B Baker Street, London NW1 6XE", "NW1 6XE"),
    ("Springfield, IL 62704", "62704"), ("1600 Amphitheatre Pkwy, Mountain View, CA 94043", "94043"),
    ("350 Fifth Avenue, New York, NY 10118-0110", "10118-0110"), ("Hauptstraße 5, 10115 Berlin", "10115"),
    ("Marienplatz 8, 80331 München", "80331"), ("12 rue de Rivoli, 75001 Paris", "75001"),
    ("Calle Mayor 3, 28013 Madrid", "28013"), ("Via Roma 10, 00184 Roma", "00184"),
    ("Damrak 1, 1012 Amsterdam", "1012"), ("my zip code is 94103", "94103"), ("postal code: 30301", "30301"),
    ("Postcode EC1A 1BB please", "EC1A 1BB"), ("Schillerstraße 12, 60313 Frankfurt", "60313"),
    ("45 Elm Street, Boston, MA 02115", "02115"), ("88 Ocean Drive, Miami, FL 33139", "33139"),
    ("PLZ 50667", "50667"), ("Bahnhofstrasse 1, 8001 Zürich", "8001"), ("5 Oak Lane, Austin, TX 78701", "78701"),
    ("Kerkstraat 10, 1017 Amsterdam", "1017"), ("Rue du Midi 4, 1000 Bruxelles", "1000"),
    ("77 Sunset Blvd, Los Angeles, CA 90028", "90028"), ("9 Queen Street, Edinburgh EH2 1JX", "EH2 1JX"),
    ("1 Infinite Loop, Cupertino, CA 95014", "95014"),
]  # fmt: skip

NEGATIVES = [
    "Upgrade to version 10.0.0.1 tonight", "We run Python 3.11.7 and Django 5.2.19", "Release v2.4.1.0 is out", "firmware 1.0.12.255",
    "The meeting is on 2024-01-15 at 10:30", "Started 15/01/1990", "Due 12.03.2024", "It happened at 12:30:45 UTC", "Call at 09:15",
    "Your order ORD-123456 has shipped", "Order #98765 is delayed", "Invoice 2024-00017 attached", "Ticket INC-0042-7781",
    "Total: $1,234,567.89", "Population 8 336 817", "We sold 1234567 units", "Pi is 3.14159265", "Answer: 42",
    "ISBN 978-3-16-148410-0", "commit a3f5c9e1b2d4f6a8c0e2", "uuid 550e8400-e29b-41d4-a716-446655440000",
    "Coordinates 48.8566, 2.3522", "SKU 55512-3 is out of stock", "Room 404 on floor 3", "In 2023 we grew 40%",
    "Error code 50213 from the printer", "Listen on port 8080", "Use a[::2] to slice", "std::vector<int> v;",
    "The password is incorrect", "Your token is valid", "Reset your password here", "Enter the api key in settings",
    "The card number 1234 5678 9012 3456 is a test pattern", "Tracking 1Z999AA10123456784", "Matrix 3x3 with 9 cells",
    "Score 98.6 out of 100", "Flight LH 400 departs", "Chapter 11, verse 2", "Model gpt-4o-mini-2024-07-18",
    "A 5-star review", "Temperature -12.5 C", "Bus 12 leaves at 7", "Ratio 16:9", "Timestamp 1700000000",
    "https://example.com/docs?page=2&lang=en", "See https://github.com/org/repo/issues/12", "ftp://mirror.example.org/pub",
    "Email support via the form", "user@localhost is not an address", "The IP was redacted", "v1.2.3-beta",
    "Build 2024.11.3", "Year range 1990-2020", "Phone lines open 9-17", "Population grew by 12345 people",
    "The ZIP file is 12345 bytes", "Street art festival had 10000 visitors", "Order 555-12 shipped",
    "Call stack depth 1024", "Java 17.0.15 is installed", "Kernel 6.1.0-18-amd64", "Node v20.20.2",
    "The value 0x7fffffff overflows", "SHA256 e3b0c44298fc1c149afbf4c8996fb924", "Hex color #FF5733",
    "Page 2 of 10", "Item 3/4 done", "the 1st, 2nd and 3rd", "an 8-hour shift", "Apollo 11 landed in 1969",
    "Windows 10.0.19045", "Room 12B, building C", "Gate B22", "Seat 14C", "Line 3: SyntaxError",
    "Math: 2+2=4", "Array index 65535", "Batch of 1000 rows", "We have 3 apples and 5 pears",
]  # fmt: skip


def cases() -> list[tuple[str, list[tuple[str, str]]]]:
    out: list[tuple[str, list[tuple[str, str]]]] = []
    singles = _emails() + _phones() + _cards() + _ibans() + _ips() + _urls() + _secrets()
    for i, (kind, value) in enumerate(singles):
        if kind == "PHONE" and not value.startswith("+") and i % 2:
            out.append((f"Call me on {value} tonight", [(kind, value)]))
        else:
            out.append((TEMPLATES[i % len(TEMPLATES)].format(v=value), [(kind, value)]))
    out += [(f"Note: {text}.", [("SECRET", value)]) for text, value in SECRET_ASSIGNMENTS]
    for text, value in POSTAL:  # the street before the first comma is an address too (since the name/address pass)
        street = text.split(",")[0] if "," in text and re.search(r"\d", text.split(",")[0]) else None
        labels = [("POSTAL_CODE", value)] + ([("ADDRESS", street)] if street else [])
        out.append((f"Ship it to {text}.", labels))
    out.append(("Born 15/01/1990", [("DATE_OF_BIRTH", "15/01/1990")]))  # was a negative: it is a date of birth
    for _ in range(15):  # several kinds in one string
        (k1, v1), (k2, v2) = RNG.sample(singles, 2)
        out.append((f"First {v1} and then {v2} at the end", [(k1, v1), (k2, v2)]))
    out += [(text, []) for text in NEGATIVES]
    return out
