"""Command-line values: moments in time (absolute or relative) and page cursors."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import click

from ..models import ConversationSummary

__all__ = ["format_cursor", "parse_cursor", "parse_moment", "to_cursor", "to_moment"]

_AGE = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or datetime (naive means UTC), or an age such as ``30d`` or ``12h`` counted
    back from `now`, as an aware UTC datetime; ValueError otherwise."""
    value = text.strip()
    age = _AGE.fullmatch(value)
    if age:
        amount, unit = int(age[1]), age[2].lower()
        moment = (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[unit]: amount})
        return moment.astimezone(timezone.utc)
    if value[-1:] in ("z", "Z"):  # fromisoformat accepts "Z" only from Python 3.11
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_cursor(last: ConversationSummary) -> str:
    """The cursor that continues a listing after `last`: ``<last active ISO>,<id>``."""
    return f"{last.updated_at.isoformat(timespec='microseconds')},{last.conversation_id}"


def parse_cursor(text: str) -> tuple[datetime, str]:
    """The ``(updated_at, conversation_id)`` pair a cursor names; ValueError otherwise."""
    stamp, sep, cid = text.partition(",")  # ISO timestamps hold no comma; ids may
    moment = datetime.fromisoformat(stamp)
    if not sep or not cid or moment.tzinfo is None:
        raise ValueError(text)
    return moment, cid


def to_moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Click callback: `parse_moment`, or a usage error naming the accepted forms."""
    if value is None:
        return None
    try:
        return parse_moment(value)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            f"{value!r} is not a date: use an ISO date (2024-05-01), a datetime "
            "(2024-05-01T12:00) or an age (30d, 12h, 45m, 2w)",
            ctx,
            param,
        ) from None


def to_cursor(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[datetime, str] | None:
    """Click callback: `parse_cursor`, or a usage error."""
    if value is None:
        return None
    try:
        return parse_cursor(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a page cursor: pass the one printed after the previous page",
            ctx,
            param,
        ) from None
