"""Thermal screening gates: sites and their cameras, readings over MQTT and HTTP (never an
image), fever alarms with the clinical re-check workflow, device health, per-day statistics and
the CDC's daily summary. The rules are pure, in :mod:`.rules`."""

from fugong.screening.models import (
    DeviceAlert,
    ScreeningAlarm,
    ScreeningCase,
    ScreeningDaily,
    ScreeningDevice,
    ScreeningReading,
    ScreeningSite,
)

__all__ = [
    "DeviceAlert",
    "ScreeningAlarm",
    "ScreeningCase",
    "ScreeningDaily",
    "ScreeningDevice",
    "ScreeningReading",
    "ScreeningSite",
]
