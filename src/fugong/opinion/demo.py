"""Demo data for the opinion domain, loaded by ``fugong demo`` after the core demo."""

from __future__ import annotations

from sqlalchemy.orm import Session


def load_opinion_demo(session: Session) -> None:
    """Load the opinion demo (placeholder until the domain lands)."""
