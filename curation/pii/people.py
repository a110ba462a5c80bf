"""Person names and street addresses, by rules: context cues ("my name is", "ich heiße", "je m'appelle",
"me llamo", "mi chiamo", "ik heet"), titles (Mr, Frau, Mme, Sr., Sig., Dhr.), sign-offs, a given-name list
followed by a capitalised surname, and street words in six languages next to a house number."""

from __future__ import annotations

import re

from .names import GIVEN_NAMES, NOT_SURNAMES
from .patterns import Match

_UP = "A-ZÀ-ÖØ-ÞĀ-Ž"
_LOW = "a-zß-öø-ÿā-ž"
# A capitalised name word: "Smith", "O'Connor", "McDonald", "Garcia-Lopez", "Al-Sayed".
CAP = rf"[{_UP}][{_LOW}]*['\u2019]?[{_UP}]?[{_LOW}]+(?:-[{_UP}][{_LOW}]+)*"
_PARTICLE = r"(?:von|van|der|den|de|da|di|del|della|dos|du|la|le|ten|ter|zu|y)"
NAME = rf"{CAP}(?:[ \t]+(?:{_PARTICLE}[ \t]+){{0,2}}{CAP}){{0,3}}"
_LOWER_WORD = rf"[{_LOW}][{_LOW}'-]+"

# Cues after which the next words are a name, even lower-cased ("my name is wei zhang").
STRONG_CUE_RE = re.compile(
    r"(?i:\b(?:my name is|my name's|ich hei(?:ß|ss)e|mein name ist|je m'appelle|mon nom est|me llamo|mi nombre es|"
    r"mi chiamo|il mio nome è|ik heet|mijn naam is))\s+"
)
# Cues after which capitalised words are a name: one word is enough.
CUE_RE = re.compile(
    r"(?i:\b(?:(?:full )?name|signed|attn|kontakt|contact|from|an|cc)\s*:\s*|\bcall me\s+|"
    r"\bmy (?:son|daughter|wife|husband|partner|mother|mom|mum|father|dad|sister|brother|friend|colleague|boss)\s+|"
    r"\b(?:mein(?:e)? (?:sohn|tochter|frau|mann|mutter|vater|schwester|bruder))\s+)"
)
# Weaker cues: two capitalised words, or one that is a known given name.
WEAK_CUE_RE = re.compile(
    r"(?i:\b(?:i'm|i am|this is|ich bin|je suis|soy|sono|ik ben|spoke (?:with|to)|talked to|ask|tell|call|email|"
    r"e-mail|ping|forward (?:this|it) to|reach|contact(?:ez|a|ate)?(?: con)?|contatta|kontaktieren sie|"
    r"neem contact op met|hablé con|ho parlato con|j'ai parlé avec|belongs to|tenant|patient|client|customer))\s+"
)
TITLE_RE = re.compile(
    r"(?<![\w.])(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Herrn?|Frau|Hr|Fr|M|Mme|Mlle|Monsieur|Madame|Mademoiselle|"
    r"Sr|Sra|Srta|Señor|Señora|Doña|Sig|Sig\.ra|Signor|Signora|Dott|Dott\.ssa|Dhr|Mevr|Mevrouw|Meneer|Mw)"
    r"(?:\.|(?=\s))(?:\s+(?:Dr|Prof|Dott)\.?)?\s+"
)
SIGN_OFF_RE = re.compile(
    r"(?i:\b(?:regards|best|thanks|thank you|cheers|sincerely|yours|grüße|gruß|mit freundlichen grüßen|cordialement|"
    r"bien à vous|saludos|un saludo|atentamente|cordiali saluti|saluti|met vriendelijke groet|groeten|groet))"
    r"[ \t]*[,:]?[ \t]*\n?[ \t]*(?=[" + _UP + "])"
)
NAME_RE = re.compile(NAME)
LOWER_NAME_RE = re.compile(rf"{_LOWER_WORD}(?:[ \t]+{_LOWER_WORD}){{0,3}}")
GIVEN_RE = re.compile(rf"(?<![\w'])(?P<given>{CAP})[ \t]+(?={CAP}|(?:{_PARTICLE})[ \t])")

_STOP = {
    "and", "und", "et", "y", "e", "en", "or", "oder", "from", "on", "in", "at", "the", "a", "an", "not", "is", "to",
    "of", "with", "mit", "avec", "con", "met", "here", "there", "also", "just", "still", "der", "die", "das",
    "le", "la", "el", "il", "het", "een", "ein", "eine", "un", "une", "uno", "una", "i", "ich", "je", "yo", "io", "ik",
    "wohne", "habite", "vivo", "abito", "woon", "live", "am", "bin", "suis", "soy", "sono", "ben",
    "tomorrow", "today", "please", "bitte", "back", "now",
}  # fmt: skip
_NOT_NAMES = {
    "Customer", "Service", "Support", "Sales", "Team", "Admin", "Everyone", "Happy", "Done", "Sorry", "Here", "Fine",
    "Good", "Back", "Ready", "Müde", "Feliz", "Fatigué", "The", "Der", "Die", "Das", "Le", "La", "El", "Il", "De",
    "Het", "Hello", "Hi", "Dear", "Thanks", "Please", "Google", "Alexa", "Siri", "Apple", "Amazon", "Microsoft",
}  # fmt: skip


_NAME_WORD_RE = re.compile(rf"{CAP}|{_PARTICLE}")
_FUNCTION_WORDS = {"mein", "meine", "mijn", "mon", "ma", "mi", "il", "lo", "je", "ik", "soy", "sono", "ho", "abito"}


def plausible_name(span: str) -> bool:
    """Whether a model's PERSON span looks like a name: name-shaped words, two of them or a known given name,
    no function word first and no street or place word last."""
    words = span.split()
    if not words or not all(_NAME_WORD_RE.fullmatch(w) for w in words):
        return False
    first = words[0]
    if first in _NOT_NAMES or first.lower() in _STOP | _FUNCTION_WORDS or words[-1] in NOT_SURNAMES:
        return False
    return len(words) >= 2 or first in GIVEN_NAMES


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop trailing words that end a name: a street word, a stop word, a known non-surname."""
    words = list(re.finditer(r"\S+", text[start:end]))
    while words and (words[-1].group() in NOT_SURNAMES or words[-1].group().lower() in _STOP):
        words.pop()
    return (start, start + words[-1].end()) if words else (start, start)


def _name_after(text: str, at: int, *, lower: bool = False, weak: bool = False) -> Match | None:
    m = NAME_RE.match(text, at) or (LOWER_NAME_RE.match(text, at) if lower else None)
    if not m or m.group().split()[0] in _NOT_NAMES or m.group().split()[0].lower() in _STOP:
        return None
    if lower and not m.group()[0].isupper():
        words = list(m.group().split())
        cut = next((i for i, w in enumerate(words) if w in _STOP), len(words))
        end = at + len(" ".join(words[:cut]))
        return Match("NAME", at, end) if cut else None
    start, end = _trim(text, m.start(), m.end())
    words = text[start:end].split()
    if not words or (weak and len(words) < 2 and words[0] not in GIVEN_NAMES):
        return None
    return Match("NAME", start, end)


def _names(text: str) -> list[Match]:
    found: list[Match | None] = []
    found += [_name_after(text, m.end(), lower=True) for m in STRONG_CUE_RE.finditer(text)]
    found += [_name_after(text, m.end()) for m in CUE_RE.finditer(text)]
    found += [_name_after(text, m.end(), weak=True) for m in WEAK_CUE_RE.finditer(text)]
    found += [_name_after(text, m.end()) for m in TITLE_RE.finditer(text)]
    found += [_name_after(text, m.end(), weak=True) for m in SIGN_OFF_RE.finditer(text)]
    for m in GIVEN_RE.finditer(text):
        if m.group("given") in GIVEN_NAMES:
            match = _name_after(text, m.start())
            found.append(match if match and " " in text[match.start : match.end] else None)
    return [m for m in found if m and m.end > m.start]


_EN_STREET = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Way|Court|Ct|Place|Pl|Boulevard|Blvd|Terrace|Close|Crescent|"
    r"Square|Row|Mews|Grove|Gardens|Parkway|Pkwy|Loop)\b\.?"
)
_FR_STREET = r"(?:rue|avenue|av\.|boulevard|bd|place|impasse|allée|chemin|quai|cours|square|route)"
_COMPOUND = (
    rf"[{_UP}][{_LOW}]*(?:straße|strasse|str\.|weg|platz|gasse|allee|ring|damm|ufer|chaussee|straat|laan|gracht|"
    r"plein|kade|steeg|singel|dijk)"
)
_TYPE_FIRST = (
    r"(?:Calle|C/|Avenida|Avda\.|Paseo|Plaza|Carrer|Camino|Ronda|Travesía|Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|"
    r"Strada|Rue|Avenue|Boulevard|Place)"
)
_CONNECT = r"(?:(?:de|del|de la|de los|de las|la|las|los|di|della|dei|delle|degli|des|du|d'|l')\s*)"
ADDRESS_RE = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:{CAP}\s+){{1,3}}{_EN_STREET}"
    rf"|\b\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+{_FR_STREET}\s+{_CONNECT}*{CAP}(?:[ -]{CAP})*"
    rf"|\b{_COMPOUND}\s*\d{{1,4}}(?:[a-z]\b)?"
    rf"|\b{CAP}\s+(?:Straße|Strasse|Allee|Platz|Weg|Ring|Gasse|Damm)\s+\d{{1,4}}(?:[a-z]\b)?"
    rf"|\b{_TYPE_FIRST}\s+{_CONNECT}*{CAP}(?:\s+{_CONNECT}*{CAP}){{0,3}},?\s+\d{{1,4}}(?:[a-z]\b)?"
    rf"|\b{CAP}\s+\d{{1,4}}[a-z]?(?=,\s*(?:\d{{4,5}}|\d{{4}} ?[A-Z]{{2}})\s+[{_UP}])"
)


def _addresses(text: str) -> list[Match]:
    return [Match("ADDRESS", m.start(), m.end()) for m in ADDRESS_RE.finditer(text)]


def candidates(text: str) -> list[Match]:
    if not re.search(rf"[{_UP}]|(?i:name|hei(?:ß|ss)|appelle|nom |llamo|nombre|chiamo|heet|naam)", text):
        return []
    return _addresses(text) + _names(text)
