"""Console sign-in: sessions kept server-side as hashes, cookie flags, CSRF on every form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.console.models import ConsoleSession
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, TenantCredentials, twilio_instance_body
from tests.console.conftest import ConsoleClient, Page


def sent_to_sign_in(page: Page, wanted: str) -> bool:
    """The page is the sign-in form, set to come back to ``wanted`` afterwards."""
    path, _, query = page.url.partition("/signin?next=")
    return bool(path) and unquote(query) == wanted


def tampered(token: str) -> str:
    """The token with its last character changed (to another one, whatever it was)."""
    return token[:-1] + ("1" if token.endswith("0") else "0")


def session_cookie(headers: list[str]) -> str:
    found = [h for h in headers if h.startswith("hubgate_session=")]
    assert len(found) == 1, headers
    return found[0]


async def test_sign_in_sets_a_hardened_cookie_and_stores_only_its_hash(
    console: ConsoleClient, tenant: TenantCredentials, hubgate: RunningHubgate
) -> None:
    page = await console.sign_in_raw(tenant)
    assert page.status == 303
    assert page.headers["Location"] == "/instances"
    cookie = session_cookie(page.set_cookies)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    # Served over plain http on loopback: a Secure cookie would never come back.
    assert "secure" not in flags
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(value) >= 43
    async with hubgate.runtime.sessions() as db:
        rows = (
            (
                await db.execute(
                    select(ConsoleSession).where(ConsoleSession.user_id == tenant.user_id)
                )
            )
            .scalars()
            .all()
        )
    assert [r.id_hash for r in rows] == [hubgate.runtime.keyring.hmac_digest(value)]
    assert all(value not in (r.id_hash, str(r.id)) for r in rows)
    assert rows[0].expires_at > datetime.now(UTC) + timedelta(hours=11)


async def test_cookie_is_secure_when_served_over_https(
    console: ConsoleClient, tenant: TenantCredentials
) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback, as behind a TLS-terminating proxy.
    https = {"X-Forwarded-Proto": "https"}
    form = await console.get("/signin", headers=https)
    signin_cookie = form.set_cookies[0]
    assert "secure" in [p.strip().lower() for p in signin_cookie.split(";")]
    # The jar keeps Secure cookies off plain http, so this test carries it by hand.
    https["Cookie"] = signin_cookie.split(";", 1)[0]
    page = await console.post(
        "/signin",
        {
            "csrf_token": form.csrf,
            "user_secret": tenant.user_secret,
            "organization_secret": tenant.organization_secret,
        },
        follow=False,
        headers=https,
    )
    flags = [p.strip().lower() for p in session_cookie(page.set_cookies).split(";")]
    assert {"secure", "httponly", "samesite=lax"} <= set(flags)


async def test_bad_secrets_show_an_error_on_the_sign_in_page(
    console: ConsoleClient, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    for user_secret, organization_secret in [
        ("wrong", tenant.organization_secret),
        (tenant.user_secret, "wrong"),
        (tenant.user_secret, other_tenant.organization_secret),
        ("", ""),
        ("with space and ünïcode", "x" * 5000),
    ]:
        page = await console.submit(
            "/signin",
            "/signin",
            {"user_secret": user_secret, "organization_secret": organization_secret},
        )
        assert page.status == 401, page.text()
        assert "Those secrets do not match a user of that organization" in page.text()
        assert page.headers["Content-Type"].startswith("text/html")
        assert not [c for c in page.set_cookies if c.startswith("hubgate_session=")]
    assert sent_to_sign_in(await console.get("/instances"), "/instances")


async def test_pages_need_a_session_and_sign_out_ends_it(
    console: ConsoleClient, tenant: TenantCredentials
) -> None:
    page = await console.get("/instances?tag=x", follow=False)
    assert page.status == 303
    assert page.headers["Location"] == "/signin?next=%2Finstances%3Ftag%3Dx"
    signed = await console.submit(
        "/signin?next=%2Fcatalog",
        "/signin",
        {
            "user_secret": tenant.user_secret,
            "organization_secret": tenant.organization_secret,
            "next": "/catalog",
        },
    )
    assert signed.url.endswith("/catalog")
    assert tenant.email in signed.text()
    cookie = console.session_id()
    out = await console.submit("/catalog", "/signout", {})
    assert out.url.endswith("/signin")
    # The old cookie, replayed, no longer signs anyone in: the row is gone.
    console.set_session_id(cookie)
    assert sent_to_sign_in(await console.get("/catalog"), "/catalog")


async def test_an_expired_session_signs_in_again(
    signed_in: ConsoleClient, hubgate: RunningHubgate, tenant: TenantCredentials
) -> None:
    assert (await signed_in.get("/catalog")).url.endswith("/catalog")
    async with hubgate.runtime.sessions() as db:
        await expire_sessions(db, tenant.user_id)
    assert sent_to_sign_in(await signed_in.get("/catalog"), "/catalog")


async def expire_sessions(db: AsyncSession, user_id: int) -> None:
    await db.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await db.commit()


async def test_next_never_leaves_the_site(
    console: ConsoleClient, tenant: TenantCredentials
) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        page = await console.submit(
            "/signin",
            "/signin",
            {
                "user_secret": tenant.user_secret,
                "organization_secret": tenant.organization_secret,
                "next": target,
            },
            follow=False,
        )
        assert page.headers["Location"] == "/", target


async def test_forms_without_the_sessions_csrf_token_are_refused(
    signed_in: ConsoleClient,
    console_of_other: ConsoleClient,
    api: Api,
    sim: TwilioSimulator,
) -> None:
    created = await api.post("instances", json=twilio_instance_body(sim))
    instance_id = created.body["id"]
    other_token = (await console_of_other.get("/catalog")).csrf
    own_token = (await signed_in.get("/catalog")).csrf
    assert other_token != own_token
    attempts = [
        (f"/instances/{instance_id}/enabled", {"enabled": "false"}),
        (f"/instances/{instance_id}/delete", {}),
        (f"/instances/{instance_id}/edit", {"name": "renamed", "username": sim.account_sid}),
        (f"/instances/{instance_id}/token", {}),
        (
            "/catalog/twiliov2",
            {"username": sim.account_sid, "password": sim.auth_token, "base.url": sim.base_url},
        ),
        ("/signout", {}),
    ]
    for path, fields in attempts:
        for token in (None, "", other_token, tampered(own_token)):
            data = dict(fields) if token is None else {**fields, "csrf_token": token}
            page = await signed_in.post(path, data)
            assert page.status == 403, (path, token)
            assert "Form expired" in page.text()
            assert sim.auth_token not in page.html
    after = await api.get(f"instances/{instance_id}")
    assert after.body["disabled"] is False
    assert after.body["name"] == "my-twilio"
    assert len((await api.get("instances")).body) == 1
    # Still signed in: the refused sign-out did nothing.
    assert (await signed_in.get("/catalog")).url.endswith("/catalog")


async def test_the_sign_in_form_has_its_own_csrf_token(
    console: ConsoleClient, tenant: TenantCredentials
) -> None:
    secrets = {"user_secret": tenant.user_secret, "organization_secret": tenant.organization_secret}
    # No sign-in cookie at all: a cross-site form post logging the victim in as someone else.
    page = await console.post("/signin", {"csrf_token": "x", **secrets})
    assert page.status == 403
    form = await console.get("/signin")
    page = await console.post("/signin", {"csrf_token": tampered(form.csrf), **secrets})
    assert page.status == 403
    assert not [c for c in page.set_cookies if c.startswith("hubgate_session=")]
