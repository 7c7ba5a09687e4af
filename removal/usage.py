"""What an account's pages show of its use, read from the call records (removal/calls.py):
calls and credits per day by channel and mode, the last failures with what their codes mean,
and the API calls listed in the history. Reads only; no image data exists to show."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing import ledger
from billing.formatting import format_credits
from removal import errors
from removal.models import CallRecord

CHART_DAYS = 30
FAILURES_SHOWN = 10
Channel = CallRecord.Channel
# The series of the charts, in stacking order: (channel, test, label).
SERIES: tuple[tuple[str, bool, str], ...] = (
    (Channel.API, False, "API"),
    (Channel.API, True, "API, test mode"),
    (Channel.WEBSITE, False, "Website"),
    (Channel.WEBSITE, True, "Website, test mode"),
    (Channel.BATCH, False, "Batch"),
    (Channel.BATCH, True, "Batch, test mode"),
)
# The history's "API calls": what arrived with an API key (batch items included).
API_CHANNELS = (Channel.API, Channel.BATCH)


@dataclass(frozen=True)
class Series:
    """One channel and mode, day by day (the days of `DailyUsage`)."""

    key: str
    label: str
    calls: tuple[int, ...]
    credits: tuple[Decimal, ...]

    @property
    def total_calls(self) -> int:
        return sum(self.calls)

    @property
    def total_credits(self) -> Decimal:
        return sum(self.credits, Decimal(0))


@dataclass(frozen=True)
class DailyUsage:
    days: tuple[date, ...]
    series: tuple[Series, ...]

    def as_data(self) -> dict:
        """For the page's `json_script`: plain JSON, credits as decimal text."""
        return {
            "days": [day.isoformat() for day in self.days],
            "series": [
                {
                    "key": s.key,
                    "label": s.label,
                    "calls": list(s.calls),
                    "credits": [str(c) for c in s.credits],
                }
                for s in self.series
            ],
        }


def series_key(channel: str, test: bool) -> str:
    return f"{channel}-{'test' if test else 'production'}"


def daily_usage(
    user: AbstractBaseUser, days: int = CHART_DAYS, now: datetime | None = None
) -> DailyUsage:
    """Calls (a record and its counted repeats) and credits charged per UTC day, the last
    `days` days up to today, one series per channel and mode."""
    today = timezone.localdate(now or timezone.now(), UTC)
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    rows = (
        CallRecord.objects.filter(user=user, created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "channel", "test")
        .annotate(records=Count("id"), repeats=Sum("repeats"), credits=Sum("credits"))
    )
    index = {first + timedelta(days=i): i for i in range(days)}
    calls = {series_key(c, t): [0] * days for c, t, _ in SERIES}
    credits = {series_key(c, t): [Decimal(0)] * days for c, t, _ in SERIES}
    for row in rows:
        i = index.get(row["day"])
        key = series_key(row["channel"], row["test"])
        if i is None or key not in calls:
            continue
        calls[key][i] += row["records"] + (row["repeats"] or 0)
        credits[key][i] += row["credits"] or Decimal(0)
    return DailyUsage(
        days=tuple(index),
        series=tuple(
            Series(
                key=series_key(c, t),
                label=label,
                calls=tuple(calls[series_key(c, t)]),
                credits=tuple(credits[series_key(c, t)]),
            )
            for c, t, label in SERIES
        ),
    )


@dataclass(frozen=True)
class Failure:
    record: CallRecord
    meaning: str


def meaning(code: int | None) -> str:
    """What an error code means, from the one table (removal/errors.py)."""
    spec = errors.ERRORS.get(code) if code is not None else None
    return spec.message if spec else ""


def recent_failures(user: AbstractBaseUser, count: int = FAILURES_SHOWN) -> list[Failure]:
    """The account's last failed calls (status 400 and up), newest first."""
    records = CallRecord.objects.filter(user=user, status__gte=400).select_related("api_key")
    return [Failure(r, meaning(r.error_code)) for r in records.order_by("-created_at")[:count]]


def api_calls(user: AbstractBaseUser) -> QuerySet[CallRecord]:
    """The account's API calls, newest first (what the history lists)."""
    return (
        CallRecord.objects.filter(user=user, channel__in=API_CHANNELS)
        .select_related("api_key")
        .order_by("-created_at", "-pk")
    )


# Below this many images' worth of credits, the dashboard says the balance is low.
LOW_BALANCE_IMAGES = 20
# Credits that lapse within this many days are announced.
LAPSE_NOTICE_DAYS = 14


def balance_notice(summary: ledger.AccountSummary, price: Decimal) -> str:
    """What the dashboard says about the balance, or "" when all is well."""
    if summary.credits <= 0:
        return summary.plain_state
    now = timezone.now()
    if summary.use_before and summary.use_before - now < timedelta(days=LAPSE_NOTICE_DAYS):
        return (
            f"Your {format_credits(summary.credits)} credits lapse on "
            f"{summary.use_before:%Y-%m-%d %H:%M} UTC: use them or buy a pack to keep them."
        )
    if price > 0 and summary.credits < price * LOW_BALANCE_IMAGES:
        images = int(summary.credits // price)
        return (
            f"Low balance: {format_credits(summary.credits)} credits left, enough for "
            f"{images} image{'s' if images != 1 else ''}."
        )
    return ""
