"""The ``hubgate`` command: serve, worker, orgs, keys, db, events, sim."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from hubgate.settings import Settings

if TYPE_CHECKING:
    import uvicorn


def _group(help_text: str) -> typer.Typer:
    # Plain help: the rich panels print a type for every option, "<bool>" for each flag.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


app = _group("Hubgate: an Open Connectors-compatible integration hub.")
orgs = _group("Organizations, their accounts and users.")
keys = _group("The keyring that encrypts credentials at rest.")
db = _group("The database schema.")
sim = _group("Stand-ins for vendors, for demos and tests.")
events = _group("Event pollers and deliveries.")
app.add_typer(orgs, name="orgs")
app.add_typer(keys, name="keys")
app.add_typer(db, name="db")
app.add_typer(sim, name="sim")
app.add_typer(events, name="events")
console = Console(stderr=True)


def _uvicorn_config(settings: Settings, url: str, workers: int) -> uvicorn.Config:
    """Every option of serve's HTTP server, in one place."""
    import uvicorn

    from hubgate.httpserver import server_options

    if workers > 1:
        # Each API process builds its own app from the environment, so the settings and
        # the database (embedded or not) it must use go there.
        os.environ.update(
            HUBGATE_DATABASE_URL=url, HUBGATE_HOST=settings.host, HUBGATE_PORT=str(settings.port)
        )
        app: Any = "hubgate.app:app_from_environment"
    else:
        from hubgate.app import create_app

        app = create_app(settings, database_url=url)
    return uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # uvicorn builds every access line's arguments (the path quoted again among them) before
        # its logger drops the record: above info no line is written, so none is built (D551).
        access_log=uvicorn.config.LOG_LEVELS.get(settings.log_level.lower(), 0) <= logging.INFO,
        loop="uvloop",
        **server_options(),
        timeout_graceful_shutdown=settings.shutdown_grace,
        # JSON lines (D64) are set up by the app in each process; uvicorn's own would not be.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )


def _existing_database(settings: Settings) -> str:
    """The database for a command that works on Hubgate's data: it never creates an empty one
    (only ``serve`` and ``db upgrade`` do); where there is none it says so and stops."""
    from hubgate.bootstrap import prepare_database

    if not settings.database_url and not (settings.data_dir / "pg" / "PG_VERSION").exists():
        console.print(
            f"No Hubgate database in {settings.data_dir.resolve()}: run this where "
            "'hubgate serve' ran, or set HUBGATE_DATA_DIR or HUBGATE_DATABASE_URL.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    return prepare_database(settings)


def _prepare(settings: Settings, url: str) -> tuple[str, str] | None:
    """Migrations, then the first tenant on an empty database: its organization's and user's
    secrets (plain strings: unpickling the tenant's class would import what is kept out)."""
    from hubgate.bootstrap import bootstrap_if_empty
    from hubgate.db.migrate import upgrade

    upgrade(url)
    created = asyncio.run(bootstrap_if_empty(settings, url))
    return None if created is None else (created.organization_secret, created.user_secret)


def _prepared(settings: Settings, workers: int) -> tuple[str, tuple[str, str] | None]:
    """The database ready: started (embedded, in this process, which owns it), migrated and
    with its first tenant; with ``--workers`` N those two in a child process. They import
    SQLAlchemy, Alembic and the models, 60 MiB that serve's supervisor kept for its whole life
    while serving nothing (bench/README.md, "Peak RSS")."""
    from hubgate.db.embedded import start_embedded
    from hubgate.settings import reveal

    url = reveal(settings.database_url) or start_embedded(settings.data_dir)
    if workers == 1:  # the one process serves too: it imports all of it anyway
        return url, _prepare(settings, url)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as child:
        return url, child.submit(_prepare, settings, url).result()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Listen address (HUBGATE_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Listen port (HUBGATE_PORT).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="API processes sharing the port and the database."),
    ] = 1,
) -> None:
    """Start Hubgate: database (embedded unless HUBGATE_DATABASE_URL), migrations, API.

    SIGTERM stops it gracefully within HUBGATE_SHUTDOWN_GRACE seconds; a second one at once.
    """
    from hubgate import serving
    from hubgate.observability.multiprocess import prepare_multiprocess_dir

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    stopping = serving.Stopping()
    signal.signal(signal.SIGTERM, stopping.on_signal)
    try:
        sock = serving.bind(settings.host, settings.port)
    except serving.PortTakenError as error:
        console.print(f"hubgate serve: {error}", highlight=False)
        raise typer.Exit(1) from None
    # Before any module that records metrics is imported (D62); with metrics off (D300) each
    # process keeps its few event counters in memory, where nobody reads them.
    if settings.metrics_enabled:
        prepare_multiprocess_dir(settings.data_dir)
    from hubgate.db.embedded import stop_embedded

    try:
        url, created = _prepared(settings, workers)
        if created is not None:
            console.print("[bold]First start: created an organization and a user.[/bold]")
            console.print("Their secrets, shown once (also saved in", end=" ")
            console.print(f"{settings.data_dir / 'bootstrap.json'}, mode 0600):")
            console.print(f"export HUBGATE_ORG_SECRET={created[0]}", soft_wrap=True)
            console.print(f"export HUBGATE_USER_SECRET={created[1]}", soft_wrap=True)
        config = _uvicorn_config(settings, url, workers)
        # The embedded mode (D3) runs the job worker beside the API, in its own process so
        # that polls and deliveries never take the API's event loop; separate workers turn
        # it off.
        if settings.embedded_worker:
            from hubgate.jobs.worker import WorkerProcess, spawn_worker

            stopping.worker = WorkerProcess(spawn_worker(url))
        console.print(f"Hubgate listens on {settings.base_url}/elements/api-v2")
        console.print(f"The web console is at {settings.base_url}/")
        serving.run(config, sock, stopping)
    finally:
        sock.close()
        if not settings.database_url:
            stop_embedded(settings.data_dir)


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Worker name shown in logs.")
    ] = None,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run a job worker (polls, deliveries, retries); any number may share one database."""
    import logging

    from hubgate.jobs.worker import run_worker
    from hubgate.observability import logs

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logs.configure(settings)
    # procrastinate logs two lines per job at INFO; its warnings and errors are what matter.
    logging.getLogger("procrastinate").setLevel(max(logging.WARNING, logging.root.level))
    url = _existing_database(settings)
    asyncio.run(run_worker(settings, url, name=name, parent_pid=parent_pid))


@events.command("status")
def events_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per instance: last poll, lag, pending and failed deliveries."""
    from rich.console import Console as Out

    from hubgate.events.report import load_status, status_table

    settings = Settings()
    rows = asyncio.run(load_status(settings, _existing_database(settings)))
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
    from hubgate.bootstrap import create_tenant

    settings = Settings()
    url = _existing_database(settings)
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
    """Add a new key and make it primary; restart servers, then run 'hubgate keys rewrap'."""
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
    from hubgate.db.engine import create_engine, create_sessionmaker, unit_of_work
    from hubgate.instances.service import rewrap_all
    from hubgate.runtime import load_keyring

    settings = Settings()
    url = _existing_database(settings)
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
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Listen port.")] = 8090,
) -> None:
    """Run the Twilio simulator: prints an Account SID, Auth Token and the base.url to use."""
    from sims.twilio_sim import main as run_simulator

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
