"""``hubgate events status``: per instance, the last poll, the lag and the deliveries owed."""

from __future__ import annotations

from datetime import datetime

from rich.console import JustifyMethod
from rich.table import Table

from hubgate.db.engine import create_engine, create_sessionmaker, unit_of_work
from hubgate.events.service import InstanceStatus, status, utcnow
from hubgate.settings import Settings


async def load_status(settings: Settings, database_url: str) -> list[InstanceStatus]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            return await status(session, settings)
    finally:
        await engine.dispose()


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def status_table(rows: list[InstanceStatus], now: datetime | None = None) -> Table:
    moment = now or utcnow()
    table = Table(title="Hubgate events", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("Instance", "right"),
        ("Name", "left"),
        ("Org", "right"),
        ("Events", "left"),
        ("Last poll", "right"),
        ("Next poll", "right"),
        ("Lag", "right"),
        ("Pending", "right"),
        ("Failed", "right"),
        ("Delivered", "right"),
        ("Last error", "left"),
    )
    for heading, justify in columns:
        table.add_column(heading, justify=justify)
    for entry in rows:
        row = entry.row
        mode = row.vendor_type if row.events_enabled else "off"
        table.add_row(
            str(row.instance_id),
            row.name,
            str(row.organization_id),
            mode,
            _ago(row.last_poll_at, moment),
            _ago(row.next_poll_at, moment) if row.next_poll_at else "-",
            _span(entry.lag_seconds) if entry.lag_seconds else "0",
            f"[yellow]{row.pending}[/yellow]" if row.pending else "0",
            f"[red]{row.failed}[/red]" if row.failed else "0",
            str(row.notified),
            (row.last_error or "")[:60],
        )
    return table
