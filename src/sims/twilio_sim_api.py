"""The `/2010-04-01/...` routes of the Twilio simulator and Twilio's paging envelope.

Authentication happens in the middleware of `twilio_sim`, which stores the caller's account under
`ACCOUNT` before any handler here runs; handlers therefore only deal with the resource itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple
from urllib.parse import urlencode

from aiohttp import web

from sims import twilio_sim_catalog as catalog
from sims.twilio_sim_model import (
    API_ROOT,
    CALL_STATUSES,
    Account,
    Form,
    JsonDict,
    Resource,
    SimState,
    SortKey,
    TwilioError,
    invalid_parameter,
    newest_first,
    not_found,
)

ACCOUNT = web.RequestKey("twilio_sim_account", Account)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


class Row(NamedTuple):
    """One list entry: the id its PageToken names, its sort key (None if computed), its JSON."""

    ident: str
    key: SortKey | None
    body: JsonDict


@dataclass(frozen=True)
class Paging:
    size: int
    page: int
    token: str | None


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid_parameter(f"Invalid {name} {text!r}: must be an integer") from None
    if not low <= value <= high:
        raise invalid_parameter(f"Invalid {name} {value}: must be between {low} and {high}")
    return value


def parse_paging(query: Mapping[str, str]) -> Paging:
    return Paging(
        size=_int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        page=_int_param(query, "Page", 0, 0, 10**9),
        token=query.get("PageToken") or None,
    )


def _window(rows: list[Row], paging: Paging, known: Mapping[str, SortKey]) -> tuple[int, int]:
    """Slice bounds of the requested page within `rows` (sorted newest first)."""
    size = paging.size
    if paging.token is None:
        start = min(paging.page * size, len(rows))
        return start, min(start + size, len(rows))
    direction, ident = paging.token[:2], paging.token[2:]
    if direction not in {"PA", "PB"} or not ident:
        raise TwilioError(400, 21481, f"Invalid PageToken {paging.token!r}")
    index = next((i for i, row in enumerate(rows) if row.ident == ident), None)
    if index is not None:
        # PA = "after this row", PB = "before this row", as in Twilio's next/previous tokens.
        boundary = index + 1 if direction == "PA" else index
    elif ident in known:
        # The row was deleted, or no longer matches the filters, since the token was issued:
        # resume where it sits in the sort order, which is stable because newer rows only ever
        # appear in front of it.
        cursor = known[ident]
        boundary = sum(1 for row in rows if row.key is not None and row.key > cursor)
    else:
        raise TwilioError(400, 21481, f"Invalid PageToken {paging.token!r}")
    if direction == "PA":
        return boundary, min(boundary + size, len(rows))
    return max(boundary - size, 0), boundary


def paginate(
    *,
    path: str,
    key: str,
    filters: list[tuple[str, str]],
    rows: list[Row],
    paging: Paging,
    known: Mapping[str, SortKey] | None = None,
) -> JsonDict:
    """Twilio's list envelope; page URIs are relative and echo the filters that were applied.

    `known` gives the sort keys of rows a PageToken may name that are not in `rows`.
    """
    first, last = _window(rows, paging, known or {})
    items = [row.body for row in rows[first:last]]

    def uri(page: int, token: str | None) -> str:
        params: list[tuple[str, str | int]] = [*filters, ("PageSize", paging.size), ("Page", page)]
        if token:
            params.append(("PageToken", token))
        return f"{path}?{urlencode(params)}"

    start = paging.page * paging.size
    next_uri = uri(paging.page + 1, "PA" + rows[last - 1].ident) if last < len(rows) else None
    previous_uri = None
    if first > 0:
        token = "PB" + rows[first].ident if first < len(rows) else None
        previous_uri = uri(max(paging.page - 1, 0), token)
    return {
        "first_page_uri": uri(0, None),
        "end": start + max(len(items) - 1, 0),
        "previous_page_uri": previous_uri,
        key: items,
        "uri": uri(paging.page, paging.token),
        "page_size": paging.size,
        "start": start,
        "next_page_uri": next_uri,
        "page": paging.page,
    }


def _echo(query: Mapping[str, str], names: Iterable[str]) -> list[tuple[str, str]]:
    return [(name, query[name]) for name in names if query.get(name) is not None]


def _day(value: str, name: str) -> date:
    """A DateSent-style filter value as a GMT day; Twilio accepts a date or an ISO date-time."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_parameter(
            f"Invalid {name} {value!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).date()


def day_filter(query: Mapping[str, str], name: str, field: str) -> Callable[[Resource], bool]:
    """`name`, `name<` and `name>` compare whole GMT days, inclusive, as Twilio's filters do."""
    on = _day(query[name], name) if query.get(name) else None
    before = _day(query[name + "<"], name + "<") if query.get(name + "<") else None
    after = _day(query[name + ">"], name + ">") if query.get(name + ">") else None
    if on is None and before is None and after is None:
        return lambda _: True

    def matches(resource: Resource) -> bool:
        stamp: datetime | None = resource.fields[field]
        if stamp is None:
            return False
        day = stamp.astimezone(UTC).date()
        return (
            (on is None or day == on)
            and (before is None or day <= before)
            and (after is None or day >= after)
        )

    return matches


def _equals(
    query: Mapping[str, str], pairs: Iterable[tuple[str, str]]
) -> Callable[[Resource], bool]:
    wanted = [(field, query[param]) for param, field in pairs if query.get(param) is not None]
    return lambda r: all(r.fields[field] == value for field, value in wanted)


def _known(account: Account, collection: Mapping[str, Resource]) -> dict[str, SortKey]:
    return {**account.tombstones, **{sid: r.sort_key for sid, r in collection.items()}}


def _rows(resources: Iterable[Resource]) -> list[Row]:
    return [Row(r.sid, r.sort_key, r.json()) for r in newest_first(resources)]


def _json(body: JsonDict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


async def read_form(request: web.Request) -> Form:
    post = await request.post()
    return Form((key, value) for key, value in post.items() if isinstance(value, str))


class TwilioApi:
    """Route handlers; each takes the state lock for its synchronous body."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_routes(self, app: web.Application) -> None:
        a = f"{API_ROOT}/Accounts/{{AccountSid}}"
        r = app.router
        r.add_get(f"{API_ROOT}/Accounts.json", self.list_accounts)
        r.add_get(f"{a}.json", self.fetch_account)
        r.add_post(f"{a}.json", self.update_account)
        r.add_get(f"{a}/Messages.json", self.list_messages)
        r.add_post(f"{a}/Messages.json", self.create_message)
        r.add_get(f"{a}/Messages/{{Sid}}.json", self.fetch_message)
        r.add_post(f"{a}/Messages/{{Sid}}.json", self.update_message)
        r.add_delete(f"{a}/Messages/{{Sid}}.json", self.delete_message)
        r.add_get(f"{a}/Messages/{{MessageSid}}/Media.json", self.list_media)
        r.add_get(f"{a}/Messages/{{MessageSid}}/Media/{{Sid}}.json", self.fetch_media)
        r.add_delete(f"{a}/Messages/{{MessageSid}}/Media/{{Sid}}.json", self.delete_media)
        r.add_get(f"{a}/Calls.json", self.list_calls)
        r.add_post(f"{a}/Calls.json", self.create_call)
        r.add_get(f"{a}/Calls/{{Sid}}.json", self.fetch_call)
        r.add_post(f"{a}/Calls/{{Sid}}.json", self.update_call)
        r.add_delete(f"{a}/Calls/{{Sid}}.json", self.delete_call)
        r.add_get(f"{a}/Addresses.json", self.list_addresses)
        r.add_post(f"{a}/Addresses.json", self.create_address)
        r.add_get(f"{a}/Addresses/{{Sid}}.json", self.fetch_address)
        r.add_post(f"{a}/Addresses/{{Sid}}.json", self.update_address)
        r.add_delete(f"{a}/Addresses/{{Sid}}.json", self.delete_address)
        r.add_get(f"{a}/AvailablePhoneNumbers.json", self.list_countries)
        r.add_get(f"{a}/AvailablePhoneNumbers/{{CountryCode}}.json", self.fetch_country)
        r.add_get(
            f"{a}/AvailablePhoneNumbers/{{CountryCode}}/{{Type:Local|Mobile|TollFree}}.json",
            self.list_available_numbers,
        )
        r.add_get(f"{a}/IncomingPhoneNumbers.json", self.list_numbers)
        r.add_post(f"{a}/IncomingPhoneNumbers.json", self.buy_number)
        r.add_get(f"{a}/IncomingPhoneNumbers/{{Sid}}.json", self.fetch_number)
        r.add_delete(f"{a}/IncomingPhoneNumbers/{{Sid}}.json", self.delete_number)
        r.add_get(f"{a}/Usage/Records.json", self.list_usage)

    @staticmethod
    def _get(collection: Mapping[str, Resource], sid: str, request: web.Request) -> Resource:
        resource = collection.get(sid)
        if resource is None:
            raise not_found(request.path)
        return resource

    # -- accounts ---------------------------------------------------------------------------

    async def list_accounts(self, request: web.Request) -> web.Response:
        me = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        keep = _equals(query, [("FriendlyName", "friendly_name"), ("Status", "status")])
        with self.state.lock:
            # The caller sees itself and the accounts it owns (Twilio's subaccounts).
            visible = [
                a.resource
                for a in self.state.accounts.values()
                if a.resource.fields["owner_account_sid"] == me.sid and keep(a.resource)
            ]
            body = paginate(
                path=f"{API_ROOT}/Accounts.json",
                key="accounts",
                filters=_echo(query, ["FriendlyName", "Status"]),
                rows=_rows(visible),
                paging=paging,
            )
        return _json(body)

    async def fetch_account(self, request: web.Request) -> web.Response:
        with self.state.lock:
            return _json(request[ACCOUNT].resource.json())

    async def update_account(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            return _json(self.state.update_account(request[ACCOUNT], form).json())

    # -- messages ---------------------------------------------------------------------------

    async def list_messages(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        sent = day_filter(query, "DateSent", "date_sent")
        addressed = _equals(query, [("To", "to"), ("From", "from")])
        with self.state.lock:
            matching = [m for m in account.messages.values() if addressed(m) and sent(m)]
            body = paginate(
                path=f"{account.uri}/Messages.json",
                key="messages",
                filters=_echo(query, ["To", "From", "DateSent", "DateSent<", "DateSent>"]),
                rows=_rows(matching),
                paging=paging,
                known=_known(account, account.messages),
            )
        return _json(body)

    async def create_message(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        account = request[ACCOUNT]
        token = request.headers.get("I-Twilio-Idempotency-Token")
        with self.state.lock:
            if token and token in account.idempotent:
                return _json(account.messages[account.idempotent[token]].json(), 201)
            message = self.state.create_message(account, form)
            if token:
                account.idempotent[token] = message.json()["sid"]
            return _json(message.json(), 201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        with self.state.lock:
            messages = request[ACCOUNT].messages
            return _json(self._get(messages, request.match_info["Sid"], request).json())

    async def update_message(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            message = self._get(request[ACCOUNT].messages, request.match_info["Sid"], request)
            return _json(self.state.update_message(message, form).json())

    async def delete_message(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        with self.state.lock:
            self._get(account.messages, request.match_info["Sid"], request)
            self.state.delete_message(account, request.match_info["Sid"])
        return _no_content()

    def _media_of(self, request: web.Request) -> tuple[Account, list[Resource]]:
        account = request[ACCOUNT]
        message = self._get(account.messages, request.match_info["MessageSid"], request)
        media = [m for m in account.media.values() if m.fields["parent_sid"] == message.sid]
        return account, media

    async def list_media(self, request: web.Request) -> web.Response:
        query = request.query
        paging = parse_paging(query)
        created = day_filter(query, "DateCreated", "date_created")
        with self.state.lock:
            account, media = self._media_of(request)
            message_sid = request.match_info["MessageSid"]
            body = paginate(
                path=f"{account.uri}/Messages/{message_sid}/Media.json",
                key="media_list",
                filters=_echo(query, ["DateCreated", "DateCreated<", "DateCreated>"]),
                rows=_rows(m for m in media if created(m)),
                paging=paging,
                known=_known(account, account.media),
            )
        return _json(body)

    async def fetch_media(self, request: web.Request) -> web.Response:
        with self.state.lock:
            _, media = self._media_of(request)
            found = self._get({m.sid: m for m in media}, request.match_info["Sid"], request)
            return _json(found.json())

    async def delete_media(self, request: web.Request) -> web.Response:
        with self.state.lock:
            account, media = self._media_of(request)
            found = self._get({m.sid: m for m in media}, request.match_info["Sid"], request)
            self.state.forget(account, account.media, found.sid)
            message = account.messages[request.match_info["MessageSid"]]
            message.fields["num_media"] = str(len(media) - 1)
        return _no_content()

    # -- calls ------------------------------------------------------------------------------

    async def list_calls(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        status = query.get("Status")
        if status is not None and status not in CALL_STATUSES:
            raise invalid_parameter(f"Invalid Status {status!r}")
        keep = _equals(
            query,
            [
                ("To", "to"),
                ("From", "from"),
                ("Status", "status"),
                ("ParentCallSid", "parent_call_sid"),
            ],
        )
        started = day_filter(query, "StartTime", "start_time")
        ended = day_filter(query, "EndTime", "end_time")
        names = ["To", "From", "ParentCallSid", "Status"]
        names += [f"{t}{op}" for t in ("StartTime", "EndTime") for op in ("", "<", ">")]
        with self.state.lock:
            matching = [c for c in account.calls.values() if keep(c) and started(c) and ended(c)]
            body = paginate(
                path=f"{account.uri}/Calls.json",
                key="calls",
                filters=_echo(query, names),
                rows=_rows(matching),
                paging=paging,
                known=_known(account, account.calls),
            )
        return _json(body)

    async def create_call(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            return _json(self.state.create_call(request[ACCOUNT], form).json(), 201)

    async def fetch_call(self, request: web.Request) -> web.Response:
        with self.state.lock:
            calls = request[ACCOUNT].calls
            return _json(self._get(calls, request.match_info["Sid"], request).json())

    async def update_call(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            call = self._get(request[ACCOUNT].calls, request.match_info["Sid"], request)
            return _json(self.state.update_call(call, form).json())

    async def delete_call(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        with self.state.lock:
            call = self._get(account.calls, request.match_info["Sid"], request)
            self.state.forget(account, account.calls, call.sid)
        return _no_content()

    # -- addresses --------------------------------------------------------------------------

    async def list_addresses(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        keep = _equals(
            query,
            [
                ("CustomerName", "customer_name"),
                ("FriendlyName", "friendly_name"),
                ("IsoCountry", "iso_country"),
            ],
        )
        emergency = query.get("EmergencyEnabled")
        with self.state.lock:
            matching = [
                a
                for a in account.addresses.values()
                if keep(a)
                and (emergency is None or a.fields["emergency_enabled"] == (emergency == "true"))
            ]
            body = paginate(
                path=f"{account.uri}/Addresses.json",
                key="addresses",
                filters=_echo(
                    query, ["CustomerName", "FriendlyName", "EmergencyEnabled", "IsoCountry"]
                ),
                rows=_rows(matching),
                paging=paging,
                known=_known(account, account.addresses),
            )
        return _json(body)

    async def create_address(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            return _json(self.state.create_address(request[ACCOUNT], form).json(), 201)

    async def fetch_address(self, request: web.Request) -> web.Response:
        with self.state.lock:
            addresses = request[ACCOUNT].addresses
            return _json(self._get(addresses, request.match_info["Sid"], request).json())

    async def update_address(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            address = self._get(request[ACCOUNT].addresses, request.match_info["Sid"], request)
            return _json(self.state.update_address(address, form).json())

    async def delete_address(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        with self.state.lock:
            address = self._get(account.addresses, request.match_info["Sid"], request)
            self.state.forget(account, account.addresses, address.sid)
        return _no_content()

    # -- phone numbers ----------------------------------------------------------------------

    async def list_countries(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        return _json(
            {
                "countries": catalog.countries(account),
                "uri": f"{account.uri}/AvailablePhoneNumbers.json",
            }
        )

    async def fetch_country(self, request: web.Request) -> web.Response:
        code = request.match_info["CountryCode"]
        for country in catalog.countries(request[ACCOUNT]):
            if country["country_code"] == code:
                return _json(country)
        raise not_found(request.path)

    async def list_available_numbers(self, request: web.Request) -> web.Response:
        query = request.query
        paging = parse_paging(query)
        country = request.match_info["CountryCode"]
        kind = catalog.NUMBER_TYPES[request.match_info["Type"]]
        with self.state.lock:
            numbers = catalog.available_numbers(
                list(self.state.accounts.values()), country, kind, dict(query)
            )
        if numbers is None:
            raise not_found(request.path)
        names = ["AreaCode", "Contains", "SmsEnabled", "MmsEnabled", "VoiceEnabled"]
        names += ["InRegion", "InPostalCode"]
        body = paginate(
            path=request.path,
            key="available_phone_numbers",
            filters=_echo(query, names),
            rows=[Row(n["phone_number"], None, n) for n in numbers],
            paging=paging,
        )
        return _json(body)

    async def list_numbers(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        friendly = query.get("FriendlyName")
        # Twilio matches PhoneNumber as a pattern (any part of the number), not exactly.
        digits = query.get("PhoneNumber")
        with self.state.lock:
            matching = [
                n
                for n in account.numbers.values()
                if (friendly is None or n.fields["friendly_name"] == friendly)
                and (digits is None or digits in n.fields["phone_number"])
            ]
            body = paginate(
                path=f"{account.uri}/IncomingPhoneNumbers.json",
                key="incoming_phone_numbers",
                filters=_echo(query, ["FriendlyName", "PhoneNumber"]),
                rows=_rows(matching),
                paging=paging,
                known=_known(account, account.numbers),
            )
        return _json(body)

    async def buy_number(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        with self.state.lock:
            accounts = list(self.state.accounts.values())
            return _json(catalog.buy_number(accounts, request[ACCOUNT], form).json(), 201)

    async def fetch_number(self, request: web.Request) -> web.Response:
        with self.state.lock:
            numbers = request[ACCOUNT].numbers
            return _json(self._get(numbers, request.match_info["Sid"], request).json())

    async def delete_number(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        with self.state.lock:
            number = self._get(account.numbers, request.match_info["Sid"], request)
            self.state.forget(account, account.numbers, number.sid)
        return _no_content()

    # -- usage ------------------------------------------------------------------------------

    async def list_usage(self, request: web.Request) -> web.Response:
        account = request[ACCOUNT]
        query = request.query
        paging = parse_paging(query)
        start = _day(query["StartDate"], "StartDate") if query.get("StartDate") else None
        end = _day(query["EndDate"], "EndDate") if query.get("EndDate") else None
        with self.state.lock:
            records = catalog.usage_records(account, query.get("Category"), start, end)
        body = paginate(
            path=f"{account.uri}/Usage/Records.json",
            key="usage_records",
            filters=_echo(query, ["Category", "StartDate", "EndDate"]),
            rows=[Row(r["category"], None, r) for r in records],
            paging=paging,
        )
        return _json(body)
