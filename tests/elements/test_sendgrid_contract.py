"""The SendGrid element's requests judged by SendGrid's own OpenAPI files: Prism mocks each file
(a SendGrid stand-in we did not write) and refuses any request its description does not allow."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from hubgate.elements.sdk import HubCall
from hubgate.hub import service
from hubgate.instances.credentials import check_credentials
from hubgate.kit.errors import HubgateError
from tests.conftest import RunningHubgate, running_prism, shared_file
from tests.elements.standard import resolved

KEY = "SG.contractkeyid.contractsecret0123456789"
FILES = ("tsg_scopes_v3.json", "tsg_mail_v3.json", "tsg_email_activity_v3.json")


@pytest.mark.prism
async def test_prism_accepts_the_sendgrid_elements_requests(
    hubgate: RunningHubgate, tmp_path: Path
) -> None:
    runtime = hubgate.runtime
    element = runtime.registry.get("sendgrid")
    async with AsyncExitStack() as stack:
        scopes, mail, activity = await asyncio.gather(
            *(
                stack.enter_async_context(running_prism(shared_file(f"sendgrid/{f}"), tmp_path))
                for f in FILES
            )
        )
        config = {"sendgrid.api.key": KEY, "sendgrid.sender": "orders@shop.example"}
        # The check call and the scope check (the file's example key may send mail).
        checked = resolved(element, **config, **{"base.url": scopes})
        await check_credentials(runtime.egress, runtime.settings, element, checked.config)

        sender = resolved(element, **config, **{"base.url": mail})
        short = {"to": "ada@mail.example", "subject": "Hello", "message": "Hi"}
        sent = await service.execute(
            runtime, sender, HubCall("POST", ("messages",), body=json.dumps(short).encode())
        )
        assert sent.body["personalizations"] == [{"to": [{"email": "ada@mail.example"}]}]
        # A v3 body is passed as given, so SendGrid's rules judge it: content needs a value.
        broken = {
            "personalizations": [{"to": [{"email": "ada@mail.example"}]}],
            "subject": "x",
            "content": [{"type": "text/plain"}],
        }
        with pytest.raises(HubgateError) as refused:
            await service.execute(
                runtime, sender, HubCall("POST", ("messages",), body=json.dumps(broken).encode())
            )
        assert 400 <= refused.value.extra["providerStatus"] < 500

        reader = resolved(element, **config, **{"base.url": activity})
        where = "to_email = 'ada@mail.example' AND status != 'delivered'"
        listed = await service.execute(
            runtime, reader, HubCall("GET", ("messages",), (("where", where),))
        )
        assert isinstance(listed.body, list)
        assert listed.vendor_request == [
            ("query", 'to_email="ada@mail.example" AND status!="delivered"')
        ]
        one = await service.execute(
            runtime, reader, HubCall("GET", ("messages", "abc123.filterdrecv-p3mdw1-0.0"))
        )
        assert isinstance(one.body, dict)
