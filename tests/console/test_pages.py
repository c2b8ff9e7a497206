"""Console pages over HTTP: catalog, authenticate form errors, lists, tenancy, local-only assets."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from hubgate.console.static_files import CONSOLE_STATIC
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, twilio_instance_body
from tests.console.conftest import ConsoleClient, Page
from tests.instances.test_lifecycle import provision


def twilio_form(sim: TwilioSimulator, **fields: str) -> dict[str, str]:
    return {
        "username": sim.account_sid,
        "password": sim.auth_token,
        "base.url": sim.base_url,
        "name": "Support line",
        "tags": "support, eu",
        **fields,
    }


def field_error(page: Page, input_id: str) -> str:
    """The error text shown right under one control."""
    found = re.search(rf'<p class="field-error" id="{input_id}-error">([^<]*)</p>', page.html)
    assert found, f"no error beside #{input_id}"
    return found.group(1)


async def test_catalog_lists_elements_with_hub_and_authentication_and_filters(
    signed_in: ConsoleClient,
) -> None:
    page = await signed_in.get("/catalog")
    assert page.status == 200
    text = page.text()
    assert "Twilio V2" in text
    assert "Messaging" in text
    assert "basic" in text
    assert 'href="/catalog/twiliov2"' in page.html
    for query in ("twilio", "MESSAGING", "sms twilio"):
        assert "Twilio V2" in (await signed_in.get(f"/catalog?q={query}")).text(), query
    nothing = await signed_in.get("/catalog?q=salesforce")
    assert 'href="/catalog/twiliov2"' not in nothing.html
    assert "No connector matches “salesforce”" in nothing.text()


async def test_authenticate_form_is_built_from_the_configuration_entries(
    signed_in: ConsoleClient,
) -> None:
    page = await signed_in.get("/catalog/twiliov2")
    html = page.html
    assert re.search(r'<label for="cfg-username">Account SID <span class="required">', html)
    assert re.search(r'<label for="cfg-password">Auth Token <span class="required">', html)
    assert re.search(r'id="cfg-password" name="password"\s+type="password"', html)
    assert "Your Twilio Account SID (starts with AC)" in html
    # Advanced entries are folded away; entries hidden from the console are not there at all.
    advanced = html.split('<details class="advanced">', 1)[1].split("</details>", 1)[0]
    for key in (
        "cfg-base-url",
        "cfg-event-poller-refresh-interval",
        "cfg-event-notification-callback-url",
    ):
        assert f'id="{key}"' in advanced, key
    assert 'id="cfg-username"' not in advanced
    assert "pagination.max" not in html
    assert 'type="checkbox" id="cfg-event-notification-enabled"' in html
    assert '<option value="webhook">' in html


async def test_wrong_auth_token_is_shown_beside_it_and_secrets_are_not_echoed(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    typed = "wrong-token-that-must-not-come-back"
    page = await signed_in.submit(
        "/catalog/twiliov2", "/catalog/twiliov2", twilio_form(sim, password=typed)
    )
    assert page.status == 400
    error = field_error(page, "cfg-password")
    assert "Twilio rejected the credentials" in error
    assert "Twilio says: Authenticate (code 20003)" in error
    assert typed not in page.html
    assert f'value="{sim.account_sid}"' in page.html
    assert 'value="Support line"' in page.html
    assert 'value="support, eu"' in page.html
    assert f'value="{sim.base_url}"' in page.html
    assert (await api.get("instances")).body == []


async def test_missing_entries_are_named_beside_their_fields(
    signed_in: ConsoleClient, sim: TwilioSimulator
) -> None:
    page = await signed_in.submit(
        "/catalog/twiliov2", "/catalog/twiliov2", twilio_form(sim, username="", password="")
    )
    assert page.status == 400
    assert field_error(page, "cfg-username") == "Account SID is required."
    assert field_error(page, "cfg-password") == "Auth Token is required."
    assert "Missing: Account SID, Auth Token." in page.text()
    assert 'aria-invalid="true"' in page.html


async def test_bad_advanced_values_open_the_advanced_section_with_the_error(
    signed_in: ConsoleClient, sim: TwilioSimulator
) -> None:
    page = await signed_in.submit(
        "/catalog/twiliov2",
        "/catalog/twiliov2",
        twilio_form(sim, **{"event.poller.refresh_interval": "0"}),
    )
    assert page.status == 400
    assert '<details class="advanced" open>' in page.html
    assert "whole minutes from 1 to 10080" in field_error(page, "cfg-event-poller-refresh-interval")
    unreachable = await signed_in.submit(
        "/catalog/twiliov2",
        "/catalog/twiliov2",
        twilio_form(sim, **{"base.url": "http://127.0.0.1:9/2010-04-01/Accounts"}),
    )
    assert "Twilio could not be reached" in field_error(unreachable, "cfg-base-url")
    html_name = await signed_in.submit(
        "/catalog/twiliov2", "/catalog/twiliov2", twilio_form(sim, name="<b></b>")
    )
    assert "name is empty once HTML is removed" in field_error(html_name, "instance-name")


async def test_authenticate_creates_the_instance_and_shows_it(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    page = await signed_in.submit("/catalog/twiliov2", "/catalog/twiliov2", twilio_form(sim))
    assert page.status == 200
    (created,) = (await api.get("instances")).body
    assert page.url.endswith(f"/instances/{created['id']}?done=created")
    assert created["name"] == "Support line"
    assert created["tags"] == ["support", "eu"]
    assert created["configuration"]["base.url"] == sim.base_url
    text = page.text()
    assert "Authenticated. Your instance is ready" in text
    assert "Enabled" in text
    assert "********" in text
    assert sim.auth_token not in page.html
    # The token stays out of the page until asked for.
    assert created["token"] not in page.html
    revealed = await signed_in.post(f"/instances/{created['id']}/token", {"csrf_token": page.csrf})
    assert f'<code class="token" id="instance-token">{created["token"]}</code>' in revealed.html
    assert revealed.headers["Cache-Control"] == "no-store"
    for step in ("/api-docs", "/mapping", "/formulas"):
        assert f'href="/instances/{created["id"]}{step}"' in page.html
    mapping = await signed_in.get(f"/instances/{created['id']}/mapping")
    assert "Common resource" in mapping.text()
    assert "not in Hubgate yet" not in mapping.text()
    formulas = await signed_in.get(f"/instances/{created['id']}/formulas")
    assert "When a Twilio message is received, answer it" in formulas.text()


async def test_edit_keeps_secrets_left_empty_and_rechecks_changed_ones(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(
        api,
        sim,
        configuration={
            **twilio_instance_body(sim)["configuration"],
            "event.poller.refresh_interval": 30,
        },
    )
    path = f"/instances/{created['id']}/edit"
    form = await signed_in.get(path)
    assert sim.auth_token not in form.html
    assert 'value="my-twilio"' in form.html
    assert 'value="30"' in form.html
    saved = await signed_in.submit(
        path,
        path,
        {
            "name": "Renamed",
            "tags": "a, b",
            "username": sim.account_sid,
            "password": "",
            "base.url": sim.base_url,
            "event.poller.refresh_interval": "",
        },
    )
    assert saved.url.endswith(f"/instances/{created['id']}?done=updated"), saved.text()
    after = (await api.get(f"instances/{created['id']}")).body
    assert (after["name"], after["tags"]) == ("Renamed", ["a", "b"])
    # An emptied entry falls back to the element's default, as on creation.
    assert after["configuration"]["event.poller.refresh_interval"] == "15"
    assert after["configuration"]["password"] == "********"
    rejected = await signed_in.submit(
        path,
        path,
        {
            "name": "Renamed",
            "username": sim.account_sid,
            "password": "nope",
            "base.url": sim.base_url,
        },
    )
    assert rejected.status == 400
    assert "Twilio rejected the credentials" in field_error(rejected, "cfg-password")
    assert 'value="Renamed"' in rejected.html
    assert (await api.get(f"instances/{created['id']}")).body["name"] == "Renamed"


async def test_trace_logging_is_switched_on_and_shows_the_instances_hub_calls(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(api, sim)
    page_path = f"/instances/{created['id']}"
    before = await signed_in.get(page_path)
    assert "Turn trace logging on" in before.text()
    on = await signed_in.submit(page_path, f"{page_path}/trace-logging", {"enabled": "true"})
    assert "Trace logging is on" in on.text()
    assert (await api.get(f"instances/{created['id']}")).body["traceLoggingEnabled"] is True
    hub = api.with_auth(f"Element {created['token']}")
    assert (await hub.get("hubs/messaging/messages")).status == 200
    shown = await signed_in.get(page_path)
    assert (
        "<code>GET /elements/api-v2/hubs/messaging/messages</code></td><td>200</td>" in shown.html
    )
    off = await signed_in.submit(page_path, f"{page_path}/trace-logging", {"enabled": "false"})
    assert "Trace logging is off" in off.text()
    assert "Turn trace logging on" in off.text()


async def test_instances_list_filters_by_element_and_tag(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    red = await provision(api, sim, name="red one", tags=["red"])
    blue = await provision(api, sim, name="blue one", tags=["blue"])
    everything = await signed_in.get("/instances")
    for created in (red, blue):
        assert f'href="/instances/{created["id"]}"' in everything.html
    assert '<option value="red">' in everything.html
    only_red = await signed_in.get("/instances?tag=red")
    assert f'href="/instances/{red["id"]}"' in only_red.html
    assert f'href="/instances/{blue["id"]}"' not in only_red.html
    twilio = await signed_in.get("/instances?element=twiliov2&tag=blue")
    assert f'href="/instances/{blue["id"]}"' in twilio.html
    assert f'href="/instances/{red["id"]}"' not in twilio.html
    none = await signed_in.get("/instances?element=nosuch")
    assert "No instance matches these filters" in none.text()


async def test_disable_enable_and_delete(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(api, sim)
    page_path = f"/instances/{created['id']}"
    off = await signed_in.submit(page_path, f"{page_path}/enabled", {"enabled": "false"})
    assert "Disabled: calls with this instance's token are refused" in off.text()
    assert (await api.get(f"instances/{created['id']}")).body["disabled"] is True
    on = await signed_in.submit(page_path, f"{page_path}/enabled", {"enabled": "true"})
    assert "Enabled: the instance's token works again" in on.text()
    confirm = await signed_in.get(f"{page_path}/delete")
    assert "Its token stops working at once" in confirm.text()
    assert (await api.get(f"instances/{created['id']}")).status == 200
    gone = await signed_in.submit(f"{page_path}/delete", f"{page_path}/delete", {})
    assert "Deleted “my-twilio”" in gone.text()
    assert (await api.get(f"instances/{created['id']}")).status == 404
    assert (await signed_in.get(page_path)).status == 404


async def test_another_tenants_instance_is_a_404_page(
    signed_in: ConsoleClient, console_of_other: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(api, sim)
    base = f"/instances/{created['id']}"
    token = (await console_of_other.get("/catalog")).csrf
    for path in (
        base,
        f"{base}/edit",
        f"{base}/delete",
        f"{base}/api-docs",
        f"{base}/api-docs/openapi.json",
        f"{base}/mapping",
    ):
        page = await console_of_other.get(path)
        assert page.status == 404, path
        assert page.headers["Content-Type"].startswith("text/html")
        assert f"There is no instance {created['id']} in your account." in page.text()
        assert created["token"] not in page.html
    for path, fields in ((f"{base}/delete", {}), (f"{base}/enabled", {"enabled": "false"})):
        page = await console_of_other.post(path, {"csrf_token": token, **fields})
        assert page.status == 404, path
    missing = await console_of_other.get("/instances/999999999")
    assert missing.status == 404
    assert "There is no instance 999999999 in your account." in missing.text()
    assert (await api.get(f"instances/{created['id']}")).body["disabled"] is False


async def test_unknown_console_addresses_are_html_and_the_api_keeps_json(
    signed_in: ConsoleClient, hubgate: RunningHubgate
) -> None:
    page = await signed_in.get("/no/such/page")
    assert page.status == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Not found" in page.text()
    assert (await signed_in.get("/catalog/nosuch")).status == 404
    assert (await signed_in.get("/static/swagger-ui/index.html")).status == 404
    api_missing = await signed_in.get("/elements/api-v2/no/such")
    assert api_missing.status == 404
    assert api_missing.headers["Content-Type"] == "application/json"


def local_urls(page: Page) -> set[str]:
    """Addresses a page loads or links to on this site (scripts, styles, links, forms)."""
    found = re.findall(r'(?:src|href|action)="([^"#]*)"', page.html)
    return {urljoin(page.url, u) for u in found if u and not u.startswith(("data:", "mailto:"))}


def external_references(text: str, own_host: str) -> list[str]:
    hosts = re.findall(r"https?://([A-Za-z0-9.\-\[\]:]+)", text)
    return [h for h in hosts if h.split(":")[0] not in (own_host, "127.0.0.1")]


class _Markup(HTMLParser):
    """What in a page can make the browser fetch or go somewhere: attributes and inline code.

    Words a page merely shows (a configured base URL, a placeholder) are not fetched, so
    text, ``value`` and ``placeholder`` are left out.
    """

    SHOWN_ONLY = frozenset({"value", "placeholder", "title", "aria-label", "alt"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.extend(v for k, v in attrs if v and k not in self.SHOWN_ONLY)
        self._inline = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._inline = False

    def handle_data(self, data: str) -> None:
        if self._inline:
            self.parts.append(data)


def loadable_markup(html: str) -> str:
    parser = _Markup()
    parser.feed(html)
    return "\n".join(parser.parts)


async def test_no_page_needs_anything_from_another_host(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api, hubgate: RunningHubgate
) -> None:
    """Every served page, stylesheet and script of ours names no other host.

    Swagger UI's bundle is the exception that is checked differently: its code carries
    documentation links it never loads; the browser tests record every request the pages
    make and find none leaving this host, and the Content-Security-Policy forbids them.
    """
    created = await provision(api, sim)
    # A formula instance of the instance, so that its page is crawled too.
    formula = await api.post(
        "formulas", json={"name": "crawled", "triggers": [{"type": "manual", "properties": {}}]}
    )
    assert formula.status == 200, formula.text
    bound = await api.post(f"formulas/{formula.body['id']}/instances", json={"name": "crawled"})
    assert bound.status == 200, bound.text
    own = urlsplit(hubgate.url).hostname or ""
    start = [
        f"/formula-instances/{bound.body['id']}",
        "/catalog",
        "/catalog/twiliov2",
        "/instances",
        f"/instances/{created['id']}",
        f"/instances/{created['id']}/edit",
        f"/instances/{created['id']}/delete",
        f"/instances/{created['id']}/api-docs",
        f"/instances/{created['id']}/mapping",
        f"/instances/{created['id']}/formulas",
        "/no/such/page",
    ]
    seen: dict[str, Page] = {}
    queue = [hubgate.url + p for p in start]
    while queue:
        url = queue.pop()
        if url in seen or not url.startswith(hubgate.url) or "/signout" in url:
            continue
        page = await signed_in.get(url[len(hubgate.url) :])
        seen[url] = page
        if page.headers.get("Content-Type", "").startswith("text/html"):
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
            queue.extend(local_urls(page))
    kinds = {"text/html": 0, "text/css": 0, "text/javascript": 0}
    for url, page in seen.items():
        media = page.headers.get("Content-Type", "").split(";")[0]
        if media in kinds:
            kinds[media] += 1
        if "/static/swagger-ui/" in url:
            if media == "text/css":
                loads = re.findall(r"url\(\s*['\"]?([^'\")]+)", page.html)
                assert all(u.startswith("data:") for u in loads), url
            continue
        text = loadable_markup(page.html) if media == "text/html" else page.html
        assert external_references(text, own) == [], url
    assert kinds["text/html"] >= 10
    # Every console file is reached from some page, plus Swagger UI's one of each kind.
    assert kinds["text/css"] == len(list(CONSOLE_STATIC.glob("*.css"))) + 1
    assert kinds["text/javascript"] == len(list(CONSOLE_STATIC.glob("*.js"))) + 1


# sha256 of the files of npm's swagger-ui-dist 5.31.0, the official release (D150).
SWAGGER_UI_RELEASE = {
    "swagger-ui-bundle.js": "93b7b0862a80e2786f85b560be7693c2344354ffa7e7e224f850a54349724c31",
    "swagger-ui.css": "9e576f8322132c76949da47f9bb53c891373c303ea3a761ff548ffc9de50a98c",
}


async def test_swagger_ui_is_served_locally_and_is_the_official_release(
    signed_in: ConsoleClient,
) -> None:
    for name, digest in SWAGGER_UI_RELEASE.items():
        async with signed_in.http.get(f"{signed_in.base}/static/swagger-ui/{name}") as response:
            assert response.status == 200
            assert hashlib.sha256(await response.read()).hexdigest() == digest, name


async def test_the_api_docs_page_is_authorized_with_the_instances_token(
    signed_in: ConsoleClient, sim: TwilioSimulator, api: Api
) -> None:
    created = await provision(api, sim)
    page = await signed_in.get(f"/instances/{created['id']}/api-docs")
    assert f'data-token="{created["token"]}"' in page.html
    assert page.headers["Cache-Control"] == "no-store"
    async with signed_in.http.get(
        f"{signed_in.base}/instances/{created['id']}/api-docs/openapi.json"
    ) as response:
        document = await response.json()
    # The same document the API serves to User/Organization callers, with a relative server.
    from_api = (await api.get(f"instances/{created['id']}/docs")).body
    assert document["paths"] == from_api["paths"]
    assert document["servers"] == [{"url": "/elements/api-v2", "description": "This Hubgate"}]
    assert document["components"]["securitySchemes"]["Element"]["name"] == "Authorization"


def test_the_readme_shows_a_small_console_screenshot() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "![The instance page of the console](docs/console.png)" in readme
    image = (root / "docs" / "console.png").read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) < 150 * 1024
