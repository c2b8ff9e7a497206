"""The hub pipeline (architecture.md, "A hub call, end to end"): business rules, no SQL.

instance (token cache) -> manifest resource and operation -> CEQL plan -> vendor request ->
normalized answer. The same steps serve HTTP hub calls (``handle``) and in-process callers such
as the poller (``fetch_all``). Nothing here knows any resource by name: the element's manifest
says what exists and its hooks do what data cannot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hubgate.elements.manifest import IdFrom, Operation, Pagination, Pushable, PushParam, Resource
from hubgate.elements.sdk import RequestHook, WriteContext
from hubgate.hub import paging, routing, vendor
from hubgate.hub.cache import ResponseCache, TokenCache, cache_cleared
from hubgate.hub.model import HubCall, HubResult, Matched, ResolvedInstance
from hubgate.hub.normalize import drop_nulls, form_fields
from hubgate.hub.repository import LogRepository
from hubgate.hub.vendor import VendorSession
from hubgate.instances import oauth
from hubgate.instances.models import Instance
from hubgate.instances.presenter import events_callback_url
from hubgate.instances.repository import InstanceRepository
from hubgate.instances.service import decrypt_configuration, ensure_enabled, ensure_owner
from hubgate.kit.ceql import (
    And,
    CeqlSyntaxError,
    Comparison,
    Expr,
    OrderKey,
    PushableField,
    evaluate,
    parse,
    parse_fields,
    parse_order_by,
    plan,
    project,
    sort_records,
)
from hubgate.kit.ceql_check import CeqlFieldError, check_fields, field_type
from hubgate.kit.egress import EgressResponse
from hubgate.kit.errors import HubgateError, bad_request, unauthorized
from hubgate.kit.jsonbody import parse_json_body
from hubgate.kit.jsonpath import dig
from hubgate.observability import context, metrics, traces
from hubgate.runtime import Runtime
from hubgate.tenants.auth import Credentials
from hubgate.tenants.service import authenticate_user

Json = Any
INSTANCE_HEADER = "elements-element-instance-id"
RETURNED_COUNT = "Elements-Returned-Count"
NEXT_PAGE_TOKEN = "Elements-Next-Page-Token"  # noqa: S105 - a header name
# A list Hubgate must sort or page itself is read whole; past this many rows it refuses.
MAX_LOCAL_RECORDS = 10_000


# --- the instance ------------------------------------------------------------------------------


def resolved_from(runtime: Runtime, instance: Instance) -> ResolvedInstance:
    return ResolvedInstance(
        id=instance.id,
        organization_id=instance.organization_id,
        account_id=instance.account_id,
        token_hash=instance.token_hash,
        version=instance.version,
        disabled=instance.disabled,
        element=runtime.registry.get(instance.element_key),
        config=decrypt_configuration(runtime.keyring, instance),
        caching_enabled=instance.caching_enabled,
        cache_time_to_live=instance.cache_time_to_live,
        max_cache_size=instance.max_cache_size,
        trace_logging_enabled=instance.trace_logging_enabled,
    )


async def resolve(
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
    tokens: TokenCache,
    credentials: Credentials,
) -> ResolvedInstance:
    """The instance of the ``Element`` token (D5, D8), from the cache when it can be."""
    if credentials.element is None:
        raise unauthorized()
    token_hash = tokens.hash_of(credentials.element, runtime.keyring.hmac_digest)
    resolved = tokens.get(token_hash)
    metrics.token_cache(hit=resolved is not None)
    with_user = credentials.user is not None or credentials.organization is not None
    if resolved is None or with_user:
        epoch = tokens.epoch
        async with sessions() as session:
            if resolved is None:
                instance = await InstanceRepository(session).by_token_hash(token_hash)
                if instance is None:
                    raise unauthorized()
                resolved = resolved_from(runtime, instance)
                tokens.put(resolved, epoch, credentials.element)
            if with_user:
                tenant = await authenticate_user(session, runtime.keyring, credentials)
                ensure_owner(tenant, resolved.organization_id, resolved.account_id)
    ensure_enabled(resolved.id, disabled=resolved.disabled)
    return resolved


# --- the pipeline ------------------------------------------------------------------------------


async def handle(
    runtime: Runtime,
    instance: ResolvedInstance,
    call: HubCall,
    responses: ResponseCache | None = None,
) -> HubResult:
    """One hub call: from the response cache (D26) when allowed, else through the vendor."""
    cache_key = None
    if call.method == "GET" and instance.caching_enabled and responses is not None:
        cache_key = "/".join(call.segments) + "?" + json.dumps(call.query)
        cached = responses.get(instance, cache_key)
        if cached is not None:
            return HubResult(cached.body, headers=dict(cached.headers))
    with traces.span("hub pipeline", {"hubgate.element": instance.element.manifest.key}) as stage:
        result = await oauth.with_token(runtime, instance, lambda i: execute(runtime, i, call))
        if stage is not None:
            stage.set_attribute("hubgate.resource", context.current().resource)
    if responses is not None:
        if cache_key is not None:
            responses.put(instance, cache_key, result.body, result.headers)
        elif call.method != "GET":
            responses.clear(instance.id)
            if instance.caching_enabled:
                # Other processes keep their own copies: they hear of the write this way.
                async with runtime.sessions() as session:
                    await LogRepository(session).notify(cache_cleared(instance.id))
                    await session.commit()
    return result


async def execute(
    runtime: Runtime,
    instance: ResolvedInstance,
    call: HubCall,
    *,
    vendor_filters_final: bool = False,
) -> HubResult:
    manifest = instance.element.manifest
    matched = routing.match(manifest, call.method, call.segments)
    context.note_call(manifest.key, matched.resource.path, instance.organization_id, instance.id)
    operation = matched.operation
    session = VendorSession.of(runtime.egress, runtime.settings, instance)
    url, query = _vendor_target(session, matched, call)
    step = _Step(runtime, instance, session, call, matched, url, query)
    if operation.hook is not None:
        return await _run_hook(step)
    if operation.list_key is not None:
        return await _list(step, vendor_filters_final)
    sent: Any = None
    data: list[tuple[str, str]] | None = None
    if operation.body != "none":
        given = _json_body(call)
        if operation.request_hook is not None:
            write = WriteContext(
                config=instance.config,
                events_url=events_callback_url(
                    runtime.settings.base_url, manifest.key, instance.id
                ),
                path_values=matched.path_values,
            )
            given = _request_hook(instance, operation.request_hook)(given, write)
        if operation.body == "form":
            sent = data = form_fields(given)
        else:
            sent = given
    response = await session.send(
        operation.vendor_method or call.method,
        url,
        params=query or None,
        data=data,
        json=sent if operation.body == "json" else None,
        idempotency_key=call.idempotency_key,
    )
    body = session.parse_json(response)
    if operation.object_path is not None and body is not None:
        body = dig(body, operation.object_path)
    if operation.id_from is not None:
        body = _with_id(operation.id_from, response, body, sent)
    if body is None:
        body = {}  # a vendor's 204 (delete) answers {} as Hubgate's own deletes do (D103)
    return _result(instance, matched, url, sent, body)


def _with_id(id_from: IdFrom, response: EgressResponse, body: Json, sent: Json) -> Json:
    """A write's answer with the new object's id where the manifest says the vendor puts it.

    A vendor that answers a write with no body (SendGrid's 202) is answered with what was
    written, so the caller sees the object it made, with its id (D280)."""
    if id_from.header is not None:
        found: Any = response.headers.get(id_from.header)
    else:
        found = dig(body, id_from.path or "")
    if body is None or body == {}:
        body = dict(sent) if isinstance(sent, dict) else {}
    if found is not None and isinstance(body, dict):
        body[id_from.field] = found
    return body


async def fetch_all(
    runtime: Runtime,
    instance: Instance,
    path_and_query: str,
    *,
    vendor_filters_final: bool | None = False,
    max_records: int = 10_000,
) -> list[dict[str, Any]]:
    """Every record of a hub list GET (``/hubs/messaging/messages?where=...``), all pages.

    Runs the same pipeline as an HTTP hub call, for ``instance`` and without a token. With
    ``vendor_filters_final`` the predicates sent to the vendor are taken as final, None: as the
    resource's poller defaults say (Twilio's day-granular ``DateSent``, D273); the others are
    still checked here. Stops after ``max_records``. Vendor failures raise ``HubgateError``.
    """
    resolved = resolved_from(runtime, instance)
    call = parse_hub_path("GET", path_and_query)
    matched = routing.match(resolved.element.manifest, "GET", call.segments)
    if matched.operation.list_key is None:
        raise bad_request(f"{path_and_query} is not a list")
    if vendor_filters_final is None:
        vendor_filters_final = matched.resource.poller.vendor_filters_final
    session = VendorSession.of(runtime.egress, runtime.settings, resolved)
    url, query = _vendor_target(session, matched, call)
    query_plan = _query_plan(matched, call, vendor_filters_final)
    # The session is made per attempt: it carries the access token a refresh replaces.
    records = await oauth.with_token(
        runtime,
        resolved,
        lambda i: _collect(
            runtime,
            i,
            VendorSession.of(runtime.egress, runtime.settings, i),
            matched.operation,
            url,
            query,
            query_plan,
            max_records,
        ),
    )
    return _shaped(resolved, records, query_plan.fields)


def parse_hub_path(method: str, path_and_query: str) -> HubCall:
    parts = urlsplit(path_and_query)
    segments = tuple(s for s in parts.path.split("/") if s)
    if len(segments) < 3 or segments[0] != "hubs":
        raise bad_request(f"{parts.path} is not a hub path (/hubs/{{hub}}/{{resource}})")
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return HubCall(method, segments[2:], query)


# --- steps -------------------------------------------------------------------------------------


def _vendor_target(
    session: VendorSession, matched: Matched, call: HubCall
) -> tuple[str, list[tuple[str, str]]]:
    """The vendor URL of the operation and the query its declared parameters give."""
    values: dict[str, str | None] = dict(matched.path_values)
    query: list[tuple[str, str]] = []
    for parameter in matched.operation.parameters:
        value = call.param(parameter.name) or parameter.default
        if value is not None and parameter.enum is not None and value not in parameter.enum:
            allowed = ", ".join(parameter.enum)
            raise bad_request(f"{parameter.name} must be one of {allowed}, not {value!r}")
        if parameter.target == "path":
            values[parameter.name] = value
        elif value is not None:
            query.append((parameter.vendor_name or parameter.name, value))
    return session.url(matched.operation.vendor_path, values), query


def _json_body(call: HubCall) -> Json:
    if not call.body:
        return {}
    media_type = (call.content_type or "application/json").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HubgateError(415, f"Unsupported content type {media_type!r}; send application/json")
    return parse_json_body(call.body)


def _result(
    instance: ResolvedInstance, matched: Matched, url: str, sent: Any, body: Json
) -> HubResult:
    if instance.remove_nulls:
        body = drop_nulls(body)
    return HubResult(
        body,
        headers={INSTANCE_HEADER: str(instance.id)},
        vendor_url=url,
        vendor_request=sent,
        resource=matched.resource,
    )


@dataclass(slots=True)
class _Step:
    """One call on its way through the pipeline; also the context element hooks get."""

    runtime: Runtime
    instance: ResolvedInstance
    session: VendorSession
    call: HubCall
    matched: Matched
    url: str
    query: list[tuple[str, str]]

    async def vendor(self) -> Any:
        operation = self.matched.operation
        response = await self.session.send(
            operation.vendor_method or self.call.method, self.url, params=self.query or None
        )
        return self.session.parse_json(response)


def _request_hook(instance: ResolvedInstance, name: str) -> RequestHook:
    element = instance.element
    hook = element.hooks.requests.get(name)
    if hook is None:
        raise HubgateError(500, f"Element {element.key} has no request hook {name}")
    return hook


async def _run_hook(step: _Step) -> HubResult:
    name = step.matched.operation.hook or ""
    element = step.instance.element
    hook = element.hooks.operations.get(name)
    if hook is None:
        raise HubgateError(500, f"Element {element.key} has no hook {name}")
    body = await hook(step)
    return _result(step.instance, step.matched, step.url, None, body)


# --- lists: CEQL, paging -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _QueryPlan:
    vendor_query: list[tuple[str, str]]
    residual: Expr | None
    order: tuple[OrderKey, ...]
    fields: tuple[str, ...]


_pushables: dict[
    int, tuple[Operation, dict[str, PushableField], dict[str, dict[str, PushParam]]]
] = {}


def _pushable_of(
    operation: Operation,
) -> tuple[dict[str, PushableField], dict[str, dict[str, PushParam]]]:
    found = _pushables.get(id(operation))
    if found is None or found[0] is not operation:
        fields: dict[str, PushableField] = {}
        params: dict[str, dict[str, PushParam]] = {}
        for name, declared in operation.pushable.items():
            fields[name] = _pushable_field(name, declared)
            params[vendor.fold(name)] = declared.ops
        found = (operation, fields, params)
        _pushables[id(operation)] = found
    return found[1], found[2]


def _pushable_field(name: str, declared: Pushable) -> PushableField:
    return PushableField(name, frozenset(declared.ops), declared.exact, frozenset(declared.kinds))


def _parse_ceql(what: str, text: str | None, parser: Callable[[str], Any]) -> Any:
    if not text:
        return None
    try:
        return parser(text)
    except CeqlSyntaxError as exc:
        raise HubgateError(400, str(exc), extra={"position": exc.position}) from None


_declared: dict[int, tuple[Operation, dict[str, str]]] = {}


def _declared_fields(resource: Resource, operation: Operation) -> dict[str, str]:
    """What a query on this list may name, by type: the resource's fields, then the names the
    vendor filters on that no response carries (Twilio's ``SmsEnabled``). Empty: undeclared."""
    found = _declared.get(id(operation))
    if found is None or found[0] is not operation:
        declared: dict[str, str] = {f.name: f.type for f in resource.fields}
        if declared:
            for name, pushable in operation.pushable.items():
                if field_type(declared, name) is None:
                    declared[name] = "date" if set(pushable.kinds) == {"date"} else "string"
        found = (operation, declared)
        _declared[id(operation)] = found
    return found[1]


def _query_plan(matched: Matched, call: HubCall, vendor_filters_final: bool) -> _QueryPlan:
    operation = matched.operation
    where: Expr | None = _parse_ceql("where", call.param("where"), parse)
    order = _parse_ceql("orderBy", call.param("orderBy"), parse_order_by) or ()
    fields = _parse_ceql("fields", call.param("fields"), parse_fields) or ()
    declared = _declared_fields(matched.resource, operation)
    if declared and (where is not None or order):
        try:
            check_fields(declared, where, order)
        except CeqlFieldError as exc:
            raise bad_request(str(exc)) from None
    if where is None:
        return _QueryPlan([], None, order, fields)
    pushable, params = _pushable_of(operation)
    split = plan(where, pushable)
    vendor_query, sent = vendor.pushed_params(split.pushed, params)
    # What the vendor applied as final leaves the residual: fields declared exact, or every
    # pushed predicate when the caller vouches for the vendor's semantics (the poller).
    final = {
        id(c)
        for c in sent
        if vendor_filters_final or operation.pushable[_declared_name(operation, c)].exact
    }
    conjuncts = where.items if isinstance(where, And) else (where,)
    rest = [c for c in conjuncts if id(c) not in final]
    residual: Expr | None = None if not rest else rest[0] if len(rest) == 1 else And(tuple(rest))
    return _QueryPlan(vendor_query, residual, order, fields)


def _declared_name(operation: Operation, comparison: Comparison) -> str:
    folded = vendor.fold(comparison.field)
    return next(name for name in operation.pushable if vendor.fold(name) == folded)


def _kept(query_plan: _QueryPlan, records: list[Json]) -> list[dict[str, Any]]:
    """The records (objects only) the residual predicate keeps."""
    residual = query_plan.residual
    if residual is None:
        return [r for r in records if isinstance(r, dict)]
    return [r for r in records if isinstance(r, dict) and evaluate(residual, r)]


def _shaped(
    instance: ResolvedInstance, records: list[dict[str, Any]], fields: Sequence[str]
) -> list[Json]:
    """The records projected on ``fields`` and without nulls (D24): one pass over the list,
    with the instance's settings read once rather than per record."""
    shaped = [project(r, fields) for r in records] if fields else records
    return drop_nulls(shaped) if instance.remove_nulls else shaped


def _page_size_max(runtime: Runtime, instance: ResolvedInstance) -> int:
    # The instance's own cap, within the operator's (HUBGATE_PAGE_SIZE_MAX).
    return min(instance.int_config("pagination.max", 100), runtime.settings.page_size_max)


async def _vendor_page(
    session: VendorSession,
    operation: Operation,
    url: str,
    params: list[tuple[str, str]] | None,
    start_index: int,
) -> tuple[list[Json], str | None]:
    """One vendor page: its records and the absolute URL of the next page, if any (D58)."""
    manifest = session.manifest
    response = await session.send("GET", url, params=params)
    envelope = session.parse_json(response)
    if isinstance(envelope, list):
        records: Any = envelope
    elif isinstance(envelope, dict):
        records = dig(envelope, operation.list_key or "")
        if not isinstance(records, list):
            raise HubgateError(
                502, f"{manifest.vendor_name} answered a list without {operation.list_key}"
            )
    else:
        raise HubgateError(502, f"{manifest.vendor_name} answered a list with something else")
    if not operation.paged:
        return records, None
    return records, _next_url(
        session, manifest.pagination_of(operation), envelope, records, url, params, start_index
    )


def _next_url(
    session: VendorSession,
    pagination: Pagination,
    envelope: Any,
    records: list[Json],
    url: str,
    params: list[tuple[str, str]] | None,
    start_index: int,
) -> str | None:
    """Where the vendor's next page is: its own next URI, else the request with the next
    cursor, offset or page number, while the total or a full page says there is more."""
    if pagination.next_field is not None:
        following = dig(envelope, pagination.next_field)
        if isinstance(following, str) and following:
            return urljoin(session.base_url, following)
        if pagination.type != "cursor" or pagination.cursor_field is None:
            return None
    if pagination.type == "cursor":
        cursor = dig(envelope, pagination.cursor_field or "")
        if not isinstance(cursor, str | int) or cursor == "":
            return None
        return _with_param(url, params, pagination.cursor_param or "", str(cursor))
    size = _int(_param(url, params, pagination.size_param), pagination.default_size)
    total = dig(envelope, pagination.total_field) if pagination.total_field else None
    if pagination.type == "offset":
        name = pagination.offset_param or ""
        start = _int(_param(url, params, name), 0)
        step = start + len(records)
    else:
        name = pagination.page_param or ""
        number = _int(_param(url, params, name), start_index)
        step = number + 1
        start = (number - start_index) * size
    reached = start + len(records)
    more = reached < total if isinstance(total, int) else len(records) >= size > 0
    return _with_param(url, params, name, str(step)) if more and records else None


def _int(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isascii() and text.isdigit() else default


def _param(url: str, params: list[tuple[str, str]] | None, name: str) -> str | None:
    found = None
    for key, value in [*parse_qsl(urlsplit(url).query, keep_blank_values=True), *(params or ())]:
        if key == name:
            found = value
    return found


def _with_param(url: str, params: list[tuple[str, str]] | None, name: str, value: str) -> str:
    """``url`` with ``params`` folded into its query and ``name`` set to ``value``."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *(params or ())]
    query = [(k, v) for k, v in query if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


async def _collect(
    runtime: Runtime,
    instance: ResolvedInstance,
    session: VendorSession,
    operation: Operation,
    url: str,
    query: list[tuple[str, str]],
    query_plan: _QueryPlan,
    limit: int,
) -> list[dict[str, Any]]:
    """Every vendor page of a list, filtered by the residual, up to ``limit`` records."""
    params = [*query, *query_plan.vendor_query]
    pagination = session.manifest.pagination_of(operation)
    if operation.paged:
        params.append((pagination.size_param, str(_page_size_max(runtime, instance))))
    start_index = instance.int_config("pagination.page.startindex", pagination.start_index)
    kept: list[dict[str, Any]] = []
    next_url: str | None = url
    first = True
    while next_url is not None and len(kept) < limit:
        records, following = await _vendor_page(
            session, operation, next_url, params if first else None, start_index
        )
        first = False
        kept.extend(_kept(query_plan, records))
        next_url = following
    return kept[:limit]


def _check_cursor_url(instance: ResolvedInstance, url: str) -> None:
    # The MAC already proves Hubgate wrote the token; this also keeps an instance whose base
    # URL changed since from following a token into the old vendor.
    base, target = urlsplit(instance.base_url), urlsplit(url)
    if (base.scheme, base.netloc) != (target.scheme, target.netloc):
        raise bad_request("Invalid nextPage token: it belongs to another vendor address")


async def _list(step: _Step, vendor_filters_final: bool) -> HubResult:
    runtime, instance, call, matched = step.runtime, step.instance, step.call, step.matched
    session, url, query = step.session, step.url, step.query
    operation = matched.operation
    pagination = instance.element.manifest.pagination_of(operation)
    query_plan = _query_plan(matched, call, vendor_filters_final)
    resource_path = "/".join(call.segments)
    page = paging.page_request(
        runtime.keyring,
        instance.id,
        resource_path,
        page=call.param("page"),
        page_size=call.param("pageSize"),
        next_page=call.param("nextPage"),
        default_size=pagination.default_size,
        max_size=_page_size_max(runtime, instance),
    )
    next_cursor: paging.Cursor | None = None
    start_index = instance.int_config("pagination.page.startindex", pagination.start_index)
    # A cursor cannot jump to page N: Hubgate reads up to it and pages itself.
    cursor_jump = pagination.type == "cursor" and page.page > 1 and page.cursor is None
    if query_plan.order or not operation.paged or cursor_jump:
        # The vendor cannot sort (or page): Hubgate reads the whole list and pages it itself.
        everything = await _collect(
            runtime, instance, session, operation, url, query, query_plan, MAX_LOCAL_RECORDS + 1
        )
        if len(everything) > MAX_LOCAL_RECORDS:
            raise bad_request(
                f"More than {MAX_LOCAL_RECORDS} records match; narrow the where clause to sort them"
            )
        everything = sort_records(everything, query_plan.order)
        if page.cursor is not None and page.cursor.url is None:
            start = page.cursor.offset
        else:
            start = (page.page - 1) * page.size
        rows: list[Json] = everything[start : start + page.size]
        if start + page.size < len(everything):
            next_cursor = paging.Cursor(offset=start + page.size)
        vendor_url = url
    else:
        if page.cursor is not None and page.cursor.url is not None:
            _check_cursor_url(instance, page.cursor.url)
            vendor_url, params = page.cursor.url, None
        else:
            params = [*query, *query_plan.vendor_query]
            if pagination.type == "page":
                params.append((pagination.page_param or "", str(page.page - 1 + start_index)))
            elif pagination.type == "offset":
                params.append((pagination.offset_param or "", str((page.page - 1) * page.size)))
            params.append((pagination.size_param, str(page.size)))
            vendor_url = url
        records, following = await _vendor_page(session, operation, vendor_url, params, start_index)
        rows = _kept(query_plan, records)
        if following is not None:
            next_cursor = paging.Cursor(url=following)
    body = _shaped(instance, rows, query_plan.fields)
    headers = {INSTANCE_HEADER: str(instance.id), RETURNED_COUNT: str(len(body))}
    if next_cursor is not None:
        headers[NEXT_PAGE_TOKEN] = paging.encode(
            runtime.keyring, instance.id, resource_path, next_cursor
        )
    return HubResult(
        body,
        headers=headers,
        vendor_url=vendor_url,
        vendor_request=query_plan.vendor_query or None,
        resource=matched.resource,
    )
