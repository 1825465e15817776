"""Dates, the one copy: read from listing pages, CSV cells and what a user types, and
shown back. Stored dates are ISO (``2024-08-13``) or yearless ISO (``--08-13``), since
the daily listing pages give no year."""

from __future__ import annotations

import datetime as _dt
import re

MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DATE = re.compile(r"^(?P<mon>[A-Za-z]{3})[a-z]*\.? (?P<day>\d{1,2})(?:, (?P<year>\d{4}))?$")


def parse_listing_date(line: str) -> str | None:
    """'Aug 13' -> '--08-13' (yearless ISO 8601); 'Aug 13, 2024' -> '2024-08-13'.

    >>> parse_listing_date("Aug 13"), parse_listing_date("Aug 13, 2024"), parse_listing_date("x")
    ('--08-13', '2024-08-13', None)
    """
    match = _DATE.match(line.strip())
    if not match or match["mon"].lower()[:3] not in MONTHS:
        return None
    month, day = MONTHS[match["mon"].lower()[:3]], int(match["day"])
    if not 1 <= day <= 31:
        return None
    return f"{match['year'] or '-'}-{month:02d}-{day:02d}"


def parse_date(text: str) -> str:
    """'2024-08-13', '--08-13', 'Aug 13' or '08-13' -> ISO or yearless ISO; ValueError otherwise.

    The date must exist: '2024-13-45' and 'Feb 30' are refused (a yearless date is
    checked against a leap year, so '--02-29' is allowed).
    """
    text = text.strip()
    iso: str | None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}|--\d{2}-\d{2}", text):
        iso = text
    elif re.fullmatch(r"\d{2}-\d{2}", text):
        iso = "--" + text
    else:
        iso = parse_listing_date(text)
        if not iso:
            raise ValueError(f"'{text}' is not a date; use 2024-08-13, Aug 13 or 08-13")
    try:
        _dt.date.fromisoformat(iso.replace("--", "2000-", 1) if iso.startswith("--") else iso)
    except ValueError:
        raise ValueError(f"'{text}' is not a valid calendar date (no such month or day); "
                         "use 2024-08-13, Aug 13 or 08-13") from None
    return iso


def display_date(date: str) -> str:
    """'--08-13' -> 'Aug 13'; '2024-08-13' -> '2024-08-13'; anything else unchanged."""
    if len(date) == 7 and date.startswith("--") and date[2:4].isdigit() and date[5:].isdigit():
        month = int(date[2:4])
        if 1 <= month <= 12:
            return f"{_NAMES[month - 1]} {int(date[5:])}"
    return date
