"""The screening rules, pure: no database, no framework. Everything here takes plain values and
returns plain values, so the services, the listener and the tests share one definition.

- A camera reading is a *screening*, not a diagnosis: an alarm only asks for a re-check with a
  clinical thermometer (IEC 80601-2-59 practice).
- A reading outside the human range (``HUMAN_MIN_C`` .. ``HUMAN_MAX_C``) is a device fault, never
  a fever.
- Fixed threshold: an alarm when the reading is at or above the site's threshold (37.3 °C, the
  usual line in China, ``体温≥37.3℃``).
- Moving baseline (optional): an alarm when the reading is at or above the median of the last
  ``window`` readings at the site plus ``offset``. Skin temperature at an entrance follows the
  weather, so a relative rule catches a fever on a cold morning that the fixed line misses.
- Device drift: a device whose mean differs from the mean of the site's other devices by more
  than ``drift_c``.
- Device silence: no reading for ``silence_minutes`` while the site is open.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: Sites are in Guangzhou: opening hours and "the day" of the statistics are local time.
SITE_TZ = ZoneInfo("Asia/Shanghai")
HUMAN_MIN_C = 30.0
HUMAN_MAX_C = 43.0
DEFAULT_THRESHOLD_C = 37.3
#: The database refuses anything outside this band: no sensor reports it, only a bug does.
PHYSICAL_MIN_C = -60.0
PHYSICAL_MAX_C = 150.0
#: A baseline needs this many readings before it is trusted.
BASELINE_MIN_READINGS = 10
#: A reading stamped further ahead than this is refused: the device's clock is wrong.
MAX_CLOCK_AHEAD = timedelta(minutes=5)
#: A reading older than this is refused: it would be purged at once, so it is a replay or a bug.
MAX_LATE = timedelta(days=30)

KIND_NORMAL = "normal"
KIND_ALARM = "alarm"
KIND_FAULT = "fault"
READING_KINDS: dict[str, str] = {KIND_NORMAL: "正常", KIND_ALARM: "报警", KIND_FAULT: "设备故障"}

RULE_THRESHOLD = "threshold"
RULE_BASELINE = "baseline"
RULE_DEVICE = "device"
ALARM_RULES: dict[str, str] = {
    RULE_THRESHOLD: "固定阈值",
    RULE_BASELINE: "动态基线",
    RULE_DEVICE: "设备报警",
}

SITE_KINDS: dict[str, str] = {
    "school": "学校",
    "factory": "工厂",
    "office": "写字楼",
    "other": "其他",
}

#: The re-check workflow. ``open`` → re-checked: ``cleared`` (a false alarm) or ``confirmed`` →
#: ``observation`` (observation room) or ``referred`` (fever clinic) → ``closed``.
ALARM_STATUSES: dict[str, str] = {
    "open": "待复核",
    "cleared": "复核正常",
    "confirmed": "复核确认发热",
    "observation": "留观",
    "referred": "转诊发热门诊",
    "closed": "已关闭",
}
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("cleared", "confirmed"),
    "cleared": ("closed",),
    "confirmed": ("observation", "referred"),
    "observation": ("referred", "closed"),
    "referred": ("closed",),
    "closed": (),
}
DISPOSITIONS: dict[str, str] = {"observation": "送留观室", "referred": "转诊发热门诊"}

ALERT_KINDS: dict[str, str] = {
    "silent": "无数据",
    "drift": "读数漂移",
    "fault": "读数超出人体范围",
}

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$|^[a-z0-9]$")
#: Keys that carry a picture in the shapes cameras push; never stored, only counted.
IMAGE_KEYS = frozenset(
    {"image", "images", "picture", "pic", "face_image", "faceImage", "snapshot", "photo",
     "visibleLightPic", "thermalPic", "pictureURL", "picUrl", "faceUrl"}
)  # fmt: skip


def code_problem(code: str) -> str | None:
    """Why ``code`` cannot name a site or device in an MQTT topic, or None."""
    if not CODE_RE.match(code):
        return "只能使用小写字母、数字和连字符（不以连字符开头或结尾），最长 40 个字符"
    return None


def classify(temperature_c: float) -> str:
    """``fault`` outside the human range (or not a finite number), else ``normal``."""
    if not math.isfinite(temperature_c) or not HUMAN_MIN_C <= temperature_c <= HUMAN_MAX_C:
        return KIND_FAULT
    return KIND_NORMAL


def time_problem(measured_at: datetime, now: datetime) -> str | None:
    """Why a reading's time is refused (too far ahead or too old), or None. Late and
    out-of-order readings within ``MAX_LATE`` are accepted."""
    if measured_at.tzinfo is None:
        return "时间必须带时区"
    if measured_at - now > MAX_CLOCK_AHEAD:
        return "时间晚于当前时间超过 5 分钟，请校准设备时钟"
    if now - measured_at > MAX_LATE:
        return "时间早于 30 天前，不再接收"
    return None


def local_day(moment: datetime) -> date:
    """The site-local calendar day a moment falls on (statistics are per local day)."""
    return moment.astimezone(SITE_TZ).date()


@dataclass(frozen=True)
class SiteRules:
    """A site's alarm settings."""

    threshold_c: float = DEFAULT_THRESHOLD_C
    baseline: bool = False
    baseline_window: int = 50
    baseline_offset_c: float = 1.0


@dataclass(frozen=True)
class Verdict:
    kind: str
    rule: str | None = None
    #: The line the reading was compared against when it alarmed.
    limit_c: float | None = None


class Baseline:
    """The last ``window`` human-range readings at a site, oldest first."""

    def __init__(self, window: int, recent: Iterable[float] = ()) -> None:
        self.values: deque[float] = deque(maxlen=max(1, window))
        self.values.extend(recent)

    def median(self) -> float | None:
        if len(self.values) < BASELINE_MIN_READINGS:
            return None
        return float(statistics.median(self.values))

    def push(self, value: float) -> None:
        self.values.append(value)


def judge(
    temperature_c: float,
    rules: SiteRules,
    baseline: Baseline | None = None,
    device_alarm: bool = False,
) -> Verdict:
    """Classify one reading and, when it is in the human range, decide whether it alarms.

    The fixed threshold is checked first; the baseline (when on and warmed up) second; a camera's
    own alarm flag last. The baseline is updated with the reading afterwards, so a reading never
    judges itself; a fault never enters the baseline.
    """
    if classify(temperature_c) == KIND_FAULT:
        return Verdict(KIND_FAULT)
    verdict = Verdict(KIND_NORMAL)
    median = baseline.median() if (rules.baseline and baseline is not None) else None
    if temperature_c >= rules.threshold_c:
        verdict = Verdict(KIND_ALARM, RULE_THRESHOLD, rules.threshold_c)
    elif median is not None and temperature_c >= median + rules.baseline_offset_c:
        verdict = Verdict(KIND_ALARM, RULE_BASELINE, round(median + rules.baseline_offset_c, 2))
    elif device_alarm:
        verdict = Verdict(KIND_ALARM, RULE_DEVICE, None)
    if baseline is not None:
        baseline.push(temperature_c)
    return verdict


def can_move(status: str, to: str) -> bool:
    return to in TRANSITIONS.get(status, ())


def recheck_outcome(recheck_c: float, threshold_c: float) -> str:
    """A clinical re-check at or above the threshold confirms the fever; below clears it."""
    return "confirmed" if recheck_c >= threshold_c else "cleared"


def drifting_devices(
    means: Mapping[int, tuple[float, int]], drift_c: float, min_readings: int = 20
) -> dict[int, float]:
    """Devices whose mean differs from the pooled mean of the site's *other* devices by more than
    ``drift_c``. ``means`` maps a device to (mean, count); devices with fewer than
    ``min_readings`` readings are neither judged nor used as a reference. Returns the
    difference (device − others) per drifting device."""
    usable = {d: mc for d, mc in means.items() if mc[1] >= min_readings}
    out: dict[int, float] = {}
    for device, (mean, _count) in usable.items():
        others = [(m, c) for d, (m, c) in usable.items() if d != device]
        total = sum(c for _, c in others)
        if not total:
            continue
        ref = sum(m * c for m, c in others) / total
        if abs(mean - ref) > drift_c:
            out[device] = round(mean - ref, 2)
    return out


def is_open(now: datetime, opens: time, closes: time) -> bool:
    """Is the site open at ``now`` (site-local time)? ``opens == closes`` means always open."""
    local = now.astimezone(SITE_TZ).time()
    if opens == closes:
        return True
    if opens < closes:
        return opens <= local < closes
    return local >= opens or local < closes  # a night shift across midnight


def is_silent(
    last_seen: datetime | None,
    now: datetime,
    opens: time,
    closes: time,
    silence_minutes: int,
) -> bool:
    """No reading for ``silence_minutes`` while the site is open (and open for at least that
    long today, so the first minutes of the morning do not raise an alert)."""
    if not is_open(now, opens, closes):
        return False
    window = timedelta(minutes=silence_minutes)
    if opens != closes:
        local = now.astimezone(SITE_TZ)
        opened = datetime.combine(local.date(), opens, SITE_TZ)
        if opened > local:  # opened yesterday evening (night shift)
            opened -= timedelta(days=1)
        if local - opened < window:
            return False
    return last_seen is None or now - last_seen >= window


def false_alarm_rate(alarms_decided: int, cleared: int) -> float | None:
    """Share of re-checked alarms that the clinical thermometer cleared."""
    return None if alarms_decided == 0 else cleared / alarms_decided


def median_or_none(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None
