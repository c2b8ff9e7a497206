"""The ``hubgate`` command: serve, worker, orgs, keys, db, events, sim."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from hubgate.settings import Settings

app = typer.Typer(
    help="Hubgate: an Open Connectors-compatible integration hub.", no_args_is_help=True
)
orgs = typer.Typer(help="Organizations, their accounts and users.", no_args_is_help=True)
keys = typer.Typer(help="The keyring that encrypts credentials at rest.", no_args_is_help=True)
db = typer.Typer(help="The database schema.", no_args_is_help=True)
sim = typer.Typer(help="Stand-ins for vendors, for demos and tests.", no_args_is_help=True)
events = typer.Typer(help="Event pollers and deliveries.", no_args_is_help=True)
app.add_typer(orgs, name="orgs")
app.add_typer(keys, name="keys")
app.add_typer(db, name="db")
app.add_typer(sim, name="sim")
app.add_typer(events, name="events")
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (HUBGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (HUBGATE_PORT).")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes sharing the port and the database.")
    ] = 1,
) -> None:
    """Start Hubgate: database (embedded unless HUBGATE_DATABASE_URL), migrations, API."""
    import os

    import uvicorn

    from hubgate.app import create_app
    from hubgate.bootstrap import bootstrap_if_empty, prepare_database
    from hubgate.httpserver import server_options

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    url = prepare_database(settings)
    created = asyncio.run(bootstrap_if_empty(settings, url))
    if created is not None:
        console.print("[bold]First start: created an organization and a user.[/bold]")
        console.print("Their secrets, shown once (also saved in", end=" ")
        console.print(f"{settings.data_dir / 'bootstrap.json'}, mode 0600):")
        console.print(f"export HUBGATE_ORG_SECRET={created.organization_secret}", soft_wrap=True)
        console.print(f"export HUBGATE_USER_SECRET={created.user_secret}", soft_wrap=True)
    console.print(f"Hubgate listens on {settings.base_url}/elements/api-v2")
    console.print(f"The web console is at {settings.base_url}/")
    from hubgate.jobs.worker import spawn_worker, stop_worker

    # The embedded mode (D3) runs the job worker beside the API, in its own process so that
    # polls and deliveries never take the API's event loop; separate workers turn it off.
    worker = spawn_worker(url) if settings.embedded_worker else None
    try:
        if workers > 1:
            # Each API process builds its own app from the environment, so the settings and
            # the database (embedded or not) it must use go there.
            os.environ.update(
                HUBGATE_DATABASE_URL=url,
                HUBGATE_HOST=settings.host,
                HUBGATE_PORT=str(settings.port),
            )
            uvicorn.run(
                "hubgate.app:app_from_environment",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                loop="uvloop",
                **server_options(),
            )
        else:
            uvicorn.run(
                create_app(settings, database_url=url),
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                loop="uvloop",
                **server_options(),
            )
    finally:
        if worker is not None:
            stop_worker(worker)


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(help="Worker name shown in logs.")] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run a job worker (polls, deliveries, retries); any number may share one database."""
    import logging

    from hubgate.bootstrap import prepare_database
    from hubgate.jobs.worker import run_worker

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # procrastinate logs two lines per job at INFO; its warnings and errors are what matter.
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, logging.root.level))
    url = prepare_database(settings)
    asyncio.run(run_worker(settings, url, name=name, parent_pid=parent_pid))


@events.command("status")
def events_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per instance: last poll, lag, pending and failed deliveries."""
    from rich.console import Console as Out

    from hubgate.bootstrap import prepare_database
    from hubgate.events.report import load_status, status_table

    settings = Settings()
    rows = asyncio.run(load_status(settings, prepare_database(settings)))
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in rows]))
        return
    Out().print(status_table(rows))


@orgs.command("create")
def orgs_create(
    name: Annotated[str, typer.Option(help="Organization name.")],
    email: Annotated[str, typer.Option(help="Email of its first user.")],
    first_name: Annotated[str, typer.Option(help="First name of its first user.")] = "",
    last_name: Annotated[str, typer.Option(help="Last name of its first user.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an organization with its default account and first user; prints their secrets."""
    from hubgate.bootstrap import create_tenant, prepare_database

    settings = Settings()
    url = prepare_database(settings)
    created = asyncio.run(
        create_tenant(
            settings, url, name=name, email=email, first_name=first_name, last_name=last_name
        )
    )
    if as_json:
        typer.echo(json.dumps(created.as_json()))
        return
    typer.echo(f"Organization {created.organization_id} secret: {created.organization_secret}")
    typer.echo(f"User {created.user_email} secret: {created.user_secret}")


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new key and make it primary; restart servers, then run ``keys rewrap``."""
    from hubgate.runtime import load_keyring

    settings = Settings()
    if settings.keyring:
        raise typer.BadParameter("HUBGATE_KEYRING is set: rotate the keyring where it is kept")
    keyring = load_keyring(settings)
    key_id = keyring.rotate()
    keyring.save(settings.keyring_path)
    typer.echo(f"New primary key {key_id}; keys: {', '.join(keyring.key_ids)}")


@keys.command("rewrap")
def keys_rewrap() -> None:
    """Re-wrap every stored secret's data key under the primary key."""
    from hubgate.bootstrap import prepare_database
    from hubgate.db.engine import create_engine, create_sessionmaker, unit_of_work
    from hubgate.instances.service import rewrap_all
    from hubgate.runtime import load_keyring

    settings = Settings()
    url = prepare_database(settings)
    keyring = load_keyring(settings)

    async def run() -> int:
        engine = create_engine(url, pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await rewrap_all(session, keyring)
        finally:
            await engine.dispose()

    moved = asyncio.run(run())
    typer.echo(f"Rewrapped {moved} ciphertexts under key {keyring.primary_id}")


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations."""
    from hubgate.bootstrap import prepare_database

    prepare_database(Settings())
    typer.echo("Database is up to date")


@sim.command("twilio")
def sim_twilio(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8090,
) -> None:
    """Run the Twilio simulator: prints an Account SID, Auth Token and the base.url to use."""
    from hubgate.testing.twilio_sim import main as run_simulator

    run_simulator(host=host, port=port)


@sim.command("sendgrid")
def sim_sendgrid(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8091,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where the signed Event Webhook posts events.")
    ] = None,
) -> None:
    """Run the SendGrid simulator: prints an API key and the Event Webhook's public key."""
    from sims.sendgrid import main as run_simulator

    run_simulator(host=host, port=port, webhook_url=webhook_url)


@sim.command("slack")
def sim_slack(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8092,
    token_lifetime: Annotated[
        float | None, typer.Option(help="Seconds an access token lives (default 12 h).")
    ] = None,
    request_url: Annotated[
        str | None, typer.Option(help="The Events API Request URL events are posted to.")
    ] = None,
) -> None:
    """Run the Slack simulator: prints the app's client id and secrets and the URLs to use."""
    from sims.slack import main as run_simulator

    run_simulator(host=host, port=port, token_lifetime=token_lifetime, request_url=request_url)


def main() -> None:
    app()
