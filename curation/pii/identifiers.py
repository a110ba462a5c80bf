"""National identifiers (checksummed where the format has one), dates of birth, passport and driving
licence numbers in context, usernames and handles, and crypto-currency addresses."""

from __future__ import annotations

import hashlib
import re

from .patterns import Match

_SPANISH_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def steuer_id_ok(digits: str) -> bool:
    """German tax id: 11 digits, ISO 7064 mod 11,10 check digit, one digit repeated in the first ten."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or counts[1:2] != [1]:
        return False
    product = 10
    for char in digits[:10]:
        product = ((int(char) + product) % 10 or 10) * 2 % 11
    return (11 - product) % 10 == int(digits[10])


def nir_ok(compact: str) -> bool:
    """French social security number: 13 characters and a key of 97 - (number mod 97)."""
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return body.isdigit() and 97 - int(body) % 97 == int(compact[13:])


def spanish_id_ok(value: str) -> bool:
    """DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter): the letter is number mod 23."""
    compact = value.replace("-", "").upper()
    number = str("XYZ".index(compact[0])) + compact[1:-1] if compact[0] in "XYZ" else compact[:-1]
    return number.isdigit() and _SPANISH_LETTERS[int(number) % 23] == compact[-1]


def codice_fiscale_ok(value: str) -> bool:
    total = 0
    for i, char in enumerate(value[:15]):
        index = int(char) if char.isdigit() else ord(char) - 65
        total += _CF_ODD[index] if i % 2 == 0 else index
    return chr(65 + total % 26) == value[15]


def bsn_ok(digits: str) -> bool:
    """Dutch citizen service number: the 11-check (9a + 8b + ... + 2h - i divisible by 11)."""
    if len(digits) != 9 or digits[0] == "0":
        return False
    total = sum(w * int(d) for w, d in zip(range(9, 1, -1), digits[:8], strict=True)) - int(digits[8])
    return total % 11 == 0


def base58check_ok(value: str) -> bool:
    number = 0
    for char in value:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes(25, "big") if number < 1 << 200 else b""
    return len(raw) == 25 and hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4] == raw[21:]


def bech32_ok(value: str) -> bool:
    hrp, _, data = value.rpartition("1")
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + [_BECH32.index(c) for c in data]
    check = 1
    for v in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            check ^= g if (top >> i) & 1 else 0
    return check in (1, 0x2BC830A3)  # bech32 (segwit v0) or bech32m (taproot)


SSN_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
SSN_BARE_RE = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3} ?(?!00)\d{2} ?(?!0000)\d{4}(?![\w-])")
SSN_CONTEXT_RE = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b[^.\n]{0,20}$")
STEUER_RE = re.compile(r"(?<![\w-])\d{2} ?\d{3} ?\d{3} ?\d{3}(?![\w-])")
STEUER_CONTEXT_RE = re.compile(r"(?i)(?:steuer|\bidnr\.?|identifikationsnummer|\btax ?id|\btin\b)[^.\n]{0,25}$")
NIR_RE = re.compile(r"(?<![\w-])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?![\w-])")
SPANISH_RE = re.compile(r"(?<![\w-])(?:\d{8}|[XYZ]-?\d{7})-?[A-Z](?![\w-])")
CF_RE = re.compile(r"(?<![\w-])[A-Z]{6}\d{2}[A-EHLMPRST]\d{2}[A-Z]\d{3}[A-Z](?![\w-])")
NINO_RE = re.compile(r"(?<![\w-])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]( ?)\d{2}\1\d{2}\1\d{2}\1[A-D](?![\w-])")
NINO_CONTEXT_RE = re.compile(r"(?i)(?:\bni\b|national insurance|\bnino\b)[^.\n]{0,25}$")
BSN_RE = re.compile(r"(?<![\w-])(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?![\w-])")
BSN_CONTEXT_RE = re.compile(r"(?i)(?:\bbsn\b|burgerservicenummer|sofi-?nummer)[^.\n]{0,25}$")

_MONTHS = (
    r"jan(?:uary|vier|uar|eiro)?|feb(?:ruary|ruar)?|mar(?:ch|s)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t|tember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|januar|februar|märz|mai|juni|juli|oktober|dezember|janvier|février|avril|"
    r"juin|juillet|août|septembre|octobre|novembre|décembre|enero|febrero|marzo|abril|mayo|junio|julio|agosto|"
    r"septiembre|octubre|noviembre|diciembre|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|"
    r"januari|februari|maart|mei|augustus|oktober"
)
DATE_RE = re.compile(
    rf"(?i)(?<![\w.])(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[./-]\d{{1,2}}[./-](?:\d{{4}}|\d{{2}})"
    rf"|\d{{1,2}}\.?\s+(?:de\s+)?(?:{_MONTHS})\.?(?:\s+de)?\s+\d{{4}}|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})(?![\w])"
)
DOB_BEFORE_RE = re.compile(
    r"(?i)(?:\bd\.?o\.?b\b\.?|date of birth|\bbirth ?date|\bbirthday|\bborn(?: on)?|\bgeb\.|\bgeboren(?: am| op)?|"
    r"geburtsdatum|geburtstag|\bnée? le|date de naissance|\bnac(?:id[oa]|í) el|fecha de nacimiento|\bnat[oa] il|"
    r"data di nascita|geboortedatum)\s*[:\-]?\s*(?:is |ist |est |es |è |on |am |le |el |il |op )?$"
)
DOB_AFTER_RE = re.compile(r"(?i)^\s*(?:geboren|born|née?|nato|nata|nacid[oa])\b")

_DOC_NUMBER = r"(?:\s*(?:number|num(?:ber|éro|ero)|no\.?|nr\.?|n[°º]\.?|#|di|de|del))*\s*(?:is |ist |est |es |è )?[:#]?\s*"
PASSPORT_RE = re.compile(
    rf"(?i:\b(?:passport|reisepass|passeport|pasaporte|passaporto|paspoort)(?:nummer|nr\.?)?){_DOC_NUMBER}"
    r"(?P<value>(?=[A-Z]*\d)[A-Z0-9]{6,10})\b"
)
LICENCE_RE = re.compile(
    r"(?i:\b(?:driver'?s? licen[cs]e|driving licen[cs]e|licen[cs]e number|führerschein(?:nummer)?|permis de conduire|"
    rf"carnet de conducir|permiso de conducir|patente(?: di guida)?|rijbewijs(?:nummer)?)){_DOC_NUMBER}"
    r"(?P<value>(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{4,20}[A-Z0-9])\b|\bDL#?\s*(?P<dl>(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{4,20}[A-Z0-9])\b"
)

HANDLE_RE = re.compile(r"(?<![\w.@/])@(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)(?![\w(@])")
NOT_HANDLES = {
    "property", "staticmethod", "classmethod", "dataclass", "override", "abstractmethod", "cached_property", "media",
    "import", "keyframes", "font-face", "supports", "charset", "param", "return", "returns", "throws", "author",
    "see", "deprecated", "todo", "test", "pytest", "mixin", "include", "extend", "everyone", "here", "channel",
    "all", "app", "router", "api",
}  # fmt: skip
USERNAME_RE = re.compile(
    r"(?i:\b(?:user ?name|user ?id|login|handle|benutzername|nom d'utilisateur|pseudo|usuario|nome utente|"
    r"gebruikersnaam))(?:\s*:\s*|\s+(?i:is|ist|est|es|è)\s+)(?P<value>[A-Za-z0-9][\w.-]{1,30}[A-Za-z0-9])\b"
)
_NOT_USERNAMES = {"not", "and", "incorrect", "invalid", "required", "missing", "wrong", "taken", "empty", "correct"}

BTC_LEGACY_RE = re.compile(r"(?<![\w])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![\w])")
BTC_BECH32_RE = re.compile(r"(?<![\w])bc1[02-9ac-hj-np-z]{11,71}(?![\w])")
ETH_RE = re.compile(r"(?<![\w])0x[0-9a-fA-F]{40}(?![\w])")


def _in_context(text: str, start: int, context: re.Pattern[str]) -> bool:
    return bool(context.search(text[max(0, start - 60) : start]))


def _national_ids(text: str) -> list[Match]:
    found = [Match("NATIONAL_ID", m.start(), m.end()) for m in SSN_RE.finditer(text)]
    for m in SSN_BARE_RE.finditer(text):
        found += [Match("NATIONAL_ID", m.start(), m.end())] if _in_context(text, m.start(), SSN_CONTEXT_RE) else []
    for m in STEUER_RE.finditer(text):
        if steuer_id_ok(m.group().replace(" ", "")) and _in_context(text, m.start(), STEUER_CONTEXT_RE):
            found.append(Match("NATIONAL_ID", m.start(), m.end()))
    found += [Match("NATIONAL_ID", m.start(), m.end()) for m in NIR_RE.finditer(text) if nir_ok(m.group().replace(" ", ""))]
    found += [Match("NATIONAL_ID", m.start(), m.end()) for m in SPANISH_RE.finditer(text) if spanish_id_ok(m.group())]
    found += [Match("NATIONAL_ID", m.start(), m.end()) for m in CF_RE.finditer(text) if codice_fiscale_ok(m.group())]
    for m in NINO_RE.finditer(text):
        if m.group(1) or _in_context(text, m.start(), NINO_CONTEXT_RE):
            found.append(Match("NATIONAL_ID", m.start(), m.end()))
    for m in BSN_RE.finditer(text):
        if bsn_ok(m.group().replace(".", "")) and _in_context(text, m.start(), BSN_CONTEXT_RE):
            found.append(Match("NATIONAL_ID", m.start(), m.end()))
    return found


def _dates_of_birth(text: str) -> list[Match]:
    found = []
    for m in DATE_RE.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()]
        if DOB_BEFORE_RE.search(before) or DOB_AFTER_RE.match(text[m.end() : m.end() + 20]):
            found.append(Match("DATE_OF_BIRTH", m.start(), m.end()))
    return found


def _documents(text: str) -> list[Match]:
    found = [Match("PASSPORT", m.start("value"), m.end("value")) for m in PASSPORT_RE.finditer(text)]
    for m in LICENCE_RE.finditer(text):
        group = "value" if m.group("value") else "dl"
        found.append(Match("DRIVING_LICENCE", m.start(group), m.end(group)))
    return found


def _usernames(text: str) -> list[Match]:
    found = [Match("USERNAME", m.start(), m.end()) for m in HANDLE_RE.finditer(text) if m.group("name").lower() not in NOT_HANDLES]
    for m in USERNAME_RE.finditer(text):
        value = m.group("value")
        said = ":" not in text[m.start() : m.start("value")]
        if value.lower() not in _NOT_USERNAMES and (not said or re.search(r"[\d_.]", value)):
            found.append(Match("USERNAME", m.start("value"), m.end("value")))
    return found


def _crypto(text: str) -> list[Match]:
    found = [Match("CRYPTO_ADDRESS", m.start(), m.end()) for m in BTC_LEGACY_RE.finditer(text) if base58check_ok(m.group())]
    found += [Match("CRYPTO_ADDRESS", m.start(), m.end()) for m in BTC_BECH32_RE.finditer(text) if bech32_ok(m.group())]
    found += [Match("CRYPTO_ADDRESS", m.start(), m.end()) for m in ETH_RE.finditer(text)]
    return found


_MAYBE_RE = re.compile(r"\d|@|(?i:user|login|handle|benutzer|pseudo|usuario|utente|gebruiker)")


def candidates(text: str) -> list[Match]:
    """Documents first: a Spanish licence number is also a valid DNI, and the context decides the kind."""
    if not _MAYBE_RE.search(text):
        return []
    return _documents(text) + _national_ids(text) + _dates_of_birth(text) + _usernames(text) + _crypto(text)
