"""One settings tree for Hubgate, read from ``HUBGATE_*`` environment variables (D2)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUBGATE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    # Unset means: start the embedded PostgreSQL in ``data_dir/pg`` (D3). Secret, like the
    # keyring: the URL carries the database password, and neither may appear in a repr or a
    # log line; readers take the value with ``get_secret_value()``.
    database_url: SecretStr | None = None
    # Database connections one process keeps (requests and its jobs together); a request that
    # finds them all busy waits for one (D410).
    database_pool_size: int = Field(default=30, ge=1, le=500)
    data_dir: Path = Path("var")
    # A keyring as JSON; when unset the keyring lives in ``data_dir/keyring.json``.
    keyring: SecretStr | None = None
    keyring_file: Path | None = None
    # Comma-separated CIDRs or host names that the egress client may reach besides
    # public addresses (D32), e.g. ``127.0.0.0/8`` for local tests and the demo.
    egress_allow: str = ""
    egress_connect_timeout: float = 5.0
    egress_read_timeout: float = 30.0
    egress_max_response_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    public_url: str | None = Field(
        default=None,
        description="The URL vendors and browsers use to reach Hubgate; defaults to http://host:port.",
    )
    log_level: str = "info"
    cors_origins: str = "*"  # Origins browsers may call from, comma-separated, or * (D52)
    # Runs the job worker inside ``hubgate serve``; set false when separate workers run.
    embedded_worker: bool = True
    # Hub calls (D25): extra attempts after the first, base of the exponential backoff in
    # seconds, and the longest Retry-After Hubgate waits out before passing a 429 on.
    hub_retries: int = 2
    hub_retry_backoff: float = 0.2
    hub_retry_after_max: float = 5.0
    # Seconds a resolved Element token stays cached when no change notification arrives.
    hub_token_cache_ttl: float = 300.0
    # How long a console sign-in lasts before the person signs in again.
    console_session_minutes: int = Field(default=720, ge=5, le=60 * 24 * 30)

    # --- jobs and events (D28-D31) --------------------------------------------------------
    # Jobs one worker process runs at once; deliveries wait on receivers, so this is wide.
    worker_concurrency: int = Field(default=32, ge=1, le=1000)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    # How often an idle worker looks for jobs whose scheduled time came (new jobs wake it).
    worker_fetch_seconds: float = Field(default=1.0, gt=0)
    # A job whose worker has sent no heartbeat for this long is run again by another worker.
    worker_stalled_seconds: float = Field(default=60.0, gt=0)
    # Cadence of the scheduling job that finds due polls and undelivered events. Polling
    # intervals stay whole minutes (D28); this only says how often the clock is looked at.
    events_tick_seconds: int = Field(default=60, ge=1, le=3600)
    # Formulas (D39, D41): the shortest interval a scheduled trigger may fire at (minutes),
    # and how often the scheduler looks for due ticks (seconds).
    formula_min_interval: float = Field(default=15.0, gt=0)
    formula_tick_seconds: int = Field(default=15, ge=1, le=60)
    # A script step's limits (D41: 30 s and 64 MiB).
    formula_script_seconds: float = Field(default=30.0, gt=0)
    formula_script_memory_mib: int = Field(default=64, ge=2)
    # A step value larger than this is stored truncated and flagged (D41).
    formula_max_value_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Seconds between delivery attempts after a failure (D29); each gets +/- jitter.
    events_retry_schedule: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    )
    events_retry_jitter: float = Field(default=0.1, ge=0, lt=1)
    events_delivery_timeout: float = Field(default=10.0, gt=0)
    # Batched deliveries (D310): notifications leased per statement, POSTs in flight at once
    # per callback host (scheme, host, port), and how long a host may take to accept a
    # connection: a dead host fails fast and its notifications wait for their retry.
    events_delivery_batch: int = Field(default=200, ge=1, le=5000)
    events_delivery_per_host: int = Field(default=32, ge=1, le=1000)
    events_delivery_connect_timeout: float = Field(default=2.0, gt=0)
    # An undelivered event this far past its attempt time with no job is deferred again.
    events_sweep_grace_seconds: float = Field(default=30.0, ge=0)
    events_max_records_per_poll: int = Field(default=10_000, ge=1)
    # Fault injection for the crash tests: a poll waits this long between fetching and
    # committing. Always 0 in production.
    events_poll_commit_pause: float = Field(default=0.0, ge=0)

    # Abuse limits (issue 6, docs/reliability.md). Failed authentications per client address:
    # this many, refilled over this many seconds, then 429 until one refills. Hub calls per
    # instance: this many a second, with bursts up to hub_rate_burst.
    auth_failure_burst: int = Field(default=20, ge=1)
    auth_failure_window: float = Field(default=60.0, gt=0)
    hub_rate_per_second: float = Field(default=50.0, gt=0)
    hub_rate_burst: int = Field(default=100, ge=1)
    # The largest page a hub list answers, whatever an instance's pagination.max says (D22).
    page_size_max: int = Field(default=1000, ge=1)
    # The shortest event.poller.refresh_interval, in minutes, an instance may ask for (D28).
    poll_interval_floor: int = Field(default=1, ge=1)
    # Transformation scripts (D37, D242): one budget per request, shared by every record of a
    # list, smaller than a formula step's 30 s / 64 MiB (D41) because a caller waits on it.
    transformation_script_seconds: float = Field(default=2.0, gt=0, le=30)
    transformation_script_memory_mib: int = Field(default=32, ge=8, le=64)
    # Sandbox worker processes per Hubgate process, with OS limits as D42's second fence
    # (D390); 0 runs scripts in threads of the Hubgate process under the engine's limits only.
    script_processes: int = Field(default=2, ge=0, le=64)

    # --- operations (D62-D66, docs/deploy.md) -----------------------------------------------
    # Seconds SIGTERM waits for in-flight requests and running jobs before stopping at once.
    shutdown_grace: int = Field(default=30, ge=0)
    # /readyz says not ready when no worker sent a heartbeat for this many seconds.
    ready_worker_age: float = Field(default=60.0, gt=0)
    # false: no request, hub or vendor figure is recorded and /metrics answers 404, for an
    # operator who does not scrape (each recorded figure costs the hot path a little; D300).
    metrics_enabled: bool = True
    # When set, /metrics answers only requests with ``Authorization: Bearer <this>``.
    metrics_token: SecretStr | None = None
    # json: one JSON object per log line (D64); text: lines for people.
    log_format: Literal["text", "json"] = "text"
    # OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318); unset means no tracing (D63).
    otel_endpoint: str | None = None
    # Share of new traces recorded; a caller's sampled parent is always followed.
    otel_sample_ratio: float = Field(default=1.0, ge=0, le=1)

    @property
    def keyring_path(self) -> Path:
        return self.keyring_file or self.data_dir / "keyring.json"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def reveal(secret: SecretStr | None) -> str | None:
    """The clear value of a secret setting, for the one place that uses it."""
    return secret.get_secret_value() if secret is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
