"""The shapes that cross the edge: the documented reading, the vendor event it is adapted
from, and the forms of sites, devices and the re-check workflow.

The documented reading (MQTT payload or HTTP body; a JSON object, or a list of them over HTTP)::

    {"device": "gate-1", "event_id": "e-000123", "time": "2020-03-02T07:45:12+08:00",
     "temperature": 36.6, "ambient": 18.5, "mask": true}

``ambient`` and ``mask`` are optional; a time without a zone is site-local (UTC+8). An image
field (``image``, ``picture``, ``snapshot``…) is dropped before validation and only counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fugong.errors import FieldError, ValidationFailed
from fugong.screening.rules import (
    DEFAULT_THRESHOLD_C,
    IMAGE_KEYS,
    SITE_KINDS,
    SITE_TZ,
    code_problem,
)


class ReadingIn(BaseModel):
    """One reading as a camera or its bridge sends it."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, max_length=40, description="设备编码")
    event_id: str = Field(min_length=1, max_length=64, description="设备内唯一的事件编号")
    time: datetime = Field(description="测量时间 ISO-8601；无时区按北京时间")
    temperature: float = Field(description="体表温度 °C")
    ambient: float | None = Field(default=None, description="环境温度 °C")
    mask: bool | None = Field(default=None, description="是否佩戴口罩")

    @field_validator("temperature", "ambient")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("必须是有限的数值")
        return v

    @field_validator("time")
    @classmethod
    def _zoned(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=SITE_TZ) if v.tzinfo is None else v


@dataclass(frozen=True)
class ParsedReading:
    """A validated reading bound to its device (the caller authenticated it)."""

    device_id: int
    event_id: str
    measured_at: datetime
    temperature_c: float
    ambient_c: float | None
    mask: bool | None
    images_dropped: int = 0
    device_alarm: bool = False


def strip_images(payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The payload without its image fields, and how many there were (nested objects too)."""
    dropped = 0
    clean: dict[str, Any] = {}
    for key, value in payload.items():
        if key in IMAGE_KEYS:
            dropped += 1
            continue
        if isinstance(value, dict):
            value, n = strip_images(value)
            dropped += n
        clean[key] = value
    return clean, dropped


def field_errors(e: ValidationError, row: int | None = None) -> list[FieldError]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(整体)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "不是可识别的字段"
        elif err["type"] == "missing":
            msg = "缺少此字段"
        out.append(FieldError(loc, msg, row))
    return out


def parse_reading(payload: Any, row: int | None = None) -> tuple[ReadingIn, int]:
    """Validate one documented reading. Returns it with the count of dropped image fields;
    raises ``ValidationFailed`` naming each bad field (``row`` is the item's 1-based index in a
    batch)."""
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("(整体)", "读数必须是 JSON 对象", row)])
    clean, dropped = strip_images(payload)
    try:
        return ReadingIn.model_validate(clean), dropped
    except ValidationError as e:
        raise ValidationFailed(field_errors(e, row)) from None


class VendorEvent(BaseModel):
    """The event shape common face-temperature cameras push over HTTP (modelled on the
    ``AccessControllerEvent`` JSON of Hikvision-style terminals): a device serial, an event
    time, the measured temperature with its unit, the camera's own abnormal-temperature flag,
    a mask flag as ``yes``/``no`` and usually a picture (dropped)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    class Inner(BaseModel):
        model_config = ConfigDict(extra="ignore")
        serialNo: int | str
        currTemperature: float
        isAbnomalTemperature: bool = False
        thermometryUnit: str = "celsius"
        mask: str | None = None
        deviceName: str | None = None

        @field_validator("thermometryUnit")
        @classmethod
        def _unit(cls, v: str) -> str:
            if v.lower() not in ("celsius", "fahrenheit"):
                raise ValueError("只支持 celsius 或 fahrenheit")
            return v.lower()

    dateTime: datetime
    AccessControllerEvent: Inner

    def to_reading(self, device_code: str) -> tuple[ReadingIn, bool]:
        """The documented reading and the camera's alarm flag."""
        ev = self.AccessControllerEvent
        temp = ev.currTemperature
        if ev.thermometryUnit == "fahrenheit":
            temp = round((temp - 32) * 5 / 9, 2)
        mask = None if ev.mask is None else ev.mask.lower() in ("yes", "true", "1")
        reading = ReadingIn(
            device=device_code,
            event_id=str(ev.serialNo),
            time=self.dateTime,
            temperature=temp,
            mask=mask,
        )
        return reading, ev.isAbnomalTemperature


def _check_code(v: str) -> str:
    v = v.strip()
    problem = code_problem(v)
    if problem:
        raise ValueError(problem)
    return v


class SiteSettings(BaseModel):
    """What an operator or official may change about a site after it is created."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    kind: str = "school"
    opens_at: time = time(7, 0)
    closes_at: time = time(19, 0)
    threshold_c: float = Field(default=DEFAULT_THRESHOLD_C, ge=35, le=40)
    baseline: bool = False
    baseline_window: int = Field(default=50, ge=10, le=1000)
    baseline_offset_c: float = Field(default=1.0, ge=0.2, le=3)
    silence_minutes: int = Field(default=30, ge=1, le=1440)
    drift_c: float = Field(default=0.5, ge=0.1, le=5)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in SITE_KINDS:
            raise ValueError(f"应为 {'/'.join(SITE_KINDS)} 之一")
        return v


class SiteCreate(SiteSettings):
    organisation_id: int | None = Field(default=None, description="所属单位（默认本单位）")
    code: str = Field(max_length=40, description="编码（用于 MQTT 主题）")

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        return _check_code(v)


class DeviceCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    code: str = Field(max_length=40, description="编码（用于 MQTT 主题与读数的 device 字段）")
    name: str = Field(min_length=1, max_length=100)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        return _check_code(v)


class Recheck(BaseModel):
    recheck_c: float = Field(ge=30, le=45, description="水银/电子体温计复测值 °C")
    note: str | None = Field(default=None, max_length=500)


class CaseRecord(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    person_name: str | None = Field(default=None, max_length=50)
    person_no: str | None = Field(default=None, max_length=30, description="工号或学号")
    unit: str | None = Field(default=None, max_length=50, description="班级或部门")

    @field_validator("person_name", "person_no", "unit")
    @classmethod
    def _blank(cls, v: str | None) -> str | None:
        return v or None


class IngestSummary(BaseModel):
    accepted: int
    duplicates: int
    faults: int
    alarms: int
    images_dropped: int


class AlarmRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    device_id: int
    temperature_c: float
    rule: str
    limit_c: float | None
    measured_at: datetime
    raised_at: datetime
    status: str
    outcome: str | None
    recheck_c: float | None
    rechecked_at: datetime | None
    closed_at: datetime | None
