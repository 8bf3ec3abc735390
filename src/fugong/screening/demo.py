"""Demo data for the screening domain, loaded by ``fugong demo`` after the core demo."""

from __future__ import annotations

from sqlalchemy.orm import Session


def load_screening_demo(session: Session) -> None:
    """Load the screening demo (placeholder until the domain lands)."""
