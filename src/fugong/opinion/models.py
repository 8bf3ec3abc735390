"""Tables of the opinion domain."""

from __future__ import annotations
