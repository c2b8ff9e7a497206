"""What the database holds: no secret in clear, and a keyring that rotates without loss."""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.embedded import pg_tool
from hubgate.instances.models import Instance
from hubgate.instances.service import decrypt_configuration, decrypt_token, rewrap_all
from hubgate.kit.crypto import DecryptionError
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, TenantCredentials, twilio_instance_body


def pg_dump(url: str) -> str:
    return subprocess.run(
        [str(pg_tool("pg_dump")), "--data-only", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


async def test_dump_holds_no_secret_in_clear(
    api: Api, sim: TwilioSimulator, tenant: TenantCredentials, pg_url: str
) -> None:
    signature_key = "sig-" + "k" * 40
    body = twilio_instance_body(sim, **{"event.notification.signature.key": signature_key})
    created: dict[str, Any] = (await api.post("instances", json=body)).body
    dump = pg_dump(pg_url)
    assert f"{created['id']}\t" in dump  # the instance row is in the dump we search
    for secret in (
        sim.auth_token,
        created["token"],
        tenant.user_secret,
        tenant.organization_secret,
        signature_key,
    ):
        assert secret not in dump
    # Their base64 forms are not there either (a lazy "encryption" would show them).
    assert base64.b64encode(sim.auth_token.encode()).decode()[:20] not in dump


async def test_rotate_and_rewrap_keep_every_instance_readable(
    api: Api, sim: TwilioSimulator, hubgate: RunningHubgate, db_session: AsyncSession
) -> None:
    created = [(await api.post("instances", json=twilio_instance_body(sim))).body for _ in range(3)]
    keyring = hubgate.runtime.keyring
    old_primary = keyring.primary_id
    new_primary = keyring.rotate()
    assert new_primary != old_primary
    # Before the rewrap both keys open their own ciphertexts.
    for item in created:
        assert (await api.get(f"instances/{item['id']}")).body["token"] == item["token"]
    moved = await rewrap_all(db_session, keyring)
    await db_session.commit()
    assert moved >= 6  # a token and an Auth Token per instance, at least
    rows = (await db_session.execute(select(Instance))).scalars().all()
    for row in rows:
        assert row.token_ciphertext.split(".")[1] == new_primary
        assert all(c.split(".")[1] == new_primary for c in row.secrets.values())
    keyring.retire(old_primary)
    for row in rows:
        decrypt_token(keyring, row)
        decrypt_configuration(keyring, row)
    for item in created:
        fetched = await api.get(f"instances/{item['id']}")
        assert fetched.status == 200
        assert fetched.body["token"] == item["token"]
    # A ciphertext moved to another row fails closed instead of opening.
    first, second = rows[0], rows[1]
    first.token_ciphertext, second.token_ciphertext = (
        second.token_ciphertext,
        first.token_ciphertext,
    )
    with pytest.raises(DecryptionError):
        decrypt_token(keyring, first)
    await db_session.rollback()
