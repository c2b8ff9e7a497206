"""Hub calls on a common resource (D36-D38): the vendor resource, answered in canonical shape.

``/hubs/{hub}/{objectName}[/{id}]`` on an instance that has a common resource ``objectName``
(``transformations.resolution``) becomes a call on the mapped vendor resource through the
ordinary pipeline (``service.handle``: vendor paging, push-down, nulls, caching), with:

* ``where``, ``orderBy`` and ``fields`` on canonical fields rewritten by
  ``transformations.query.rewrite``: what maps straight to a vendor field goes to the pipeline
  in vendor names (pushed down where the element can, else checked on the vendor's rows), the
  rest is checked here after the mapping; a name the resource lacks is a 400 (D38).
* request bodies mapped towards the vendor (``vendorWritePath`` names the vendor's write
  field) and answers mapped back, the script running once per request over every object in
  one sandbox context (D37, D42); a failed script leaves the mapped objects and says so in
  ``Elements-Error``.
* an order Hubgate must apply itself (a key the vendor cannot read) reads the whole list and
  pages it here, with Hubgate's own page tokens, as the pipeline does for vendor lists.

Any other call goes to ``service.handle`` unchanged.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from hubgate.hub import paging, service
from hubgate.hub.cache import ResponseCache
from hubgate.hub.model import HubCall, HubResult, ResolvedInstance
from hubgate.hub.normalize import drop_nulls
from hubgate.kit.ceql import (
    CeqlSyntaxError,
    Expr,
    OrderKey,
    evaluate,
    parse,
    parse_fields,
    parse_order_by,
    project,
    sort_records,
    to_ceql,
)
from hubgate.kit.ceql_syntax import render_field
from hubgate.kit.errors import HubgateError, bad_request
from hubgate.runtime import Runtime
from hubgate.transformations.mapping import transform
from hubgate.transformations.query import CanonicalQuery, UnknownFieldError, rewrite
from hubgate.transformations.resolution import CommonResource, mappings_of
from hubgate.transformations.service import script_limits

ELEMENTS_ERROR: Final = "Elements-Error"
_QUERY_PARAMS: Final = frozenset({"where", "orderBy", "fields"})
_WRITES: Final = frozenset({"POST", "PUT", "PATCH"})
_NO_QUERY: Final = CanonicalQuery(None, None, (), (), (), ())


async def handle(
    runtime: Runtime,
    instance: ResolvedInstance,
    call: HubCall,
    responses: ResponseCache | None = None,
) -> HubResult:
    """A hub call: on a common resource of the instance in canonical shape, else as it is."""
    mappings = await mappings_of(runtime.sessions, instance)
    resource = mappings.get(call.segments[0]) if mappings else None
    if resource is None:
        return await service.handle(runtime, instance, call, responses)
    return await _Canonical(runtime, instance, call, responses, resource).run()


def _parsed(text: str | None, parser: Any) -> Any:
    if not text:
        return None
    try:
        return parser(text)
    except CeqlSyntaxError as exc:
        raise HubgateError(400, str(exc), extra={"position": exc.position}) from None


def _order_text(keys: tuple[OrderKey, ...]) -> str:
    return ", ".join(f"{render_field(k.field)} {'desc' if k.descending else 'asc'}" for k in keys)


class _Canonical:
    def __init__(
        self,
        runtime: Runtime,
        instance: ResolvedInstance,
        call: HubCall,
        responses: ResponseCache | None,
        resource: CommonResource,
    ) -> None:
        self.runtime = runtime
        self.instance = instance
        self.call = call
        self.responses = responses
        self.resource = resource
        self.transformation = resource.transformation
        self.limits = script_limits(runtime.settings)
        self.error: str | None = None

    def _vendor_call(self, query: tuple[tuple[str, str], ...], body: bytes) -> HubCall:
        call = self.call
        segments = (*self.resource.vendor_segments, *call.segments[1:])
        content_type = "application/json" if body else call.content_type
        return HubCall(call.method, segments, query, body, content_type, call.idempotency_key)

    async def _from_vendor(self, objects: list[Any]) -> list[Any]:
        records = [o for o in objects if isinstance(o, dict)]
        mapped, error = await transform(
            self.transformation, records, from_vendor=True, limits=self.limits
        )
        self.error = self.error or error
        if self.instance.remove_nulls:
            # A script may have written nulls; D24 holds for canonical answers too.
            mapped = [drop_nulls(m) for m in mapped]
        return mapped

    def _answer(self, result: HubResult, body: Any) -> HubResult:
        headers = dict(result.headers)
        if isinstance(body, list) and service.RETURNED_COUNT in headers:
            headers[service.RETURNED_COUNT] = str(len(body))
        if self.error is not None:
            headers[ELEMENTS_ERROR] = self.error
        return HubResult(
            body,
            status=result.status,
            headers=headers,
            vendor_url=result.vendor_url,
            vendor_request=result.vendor_request,
            resource=result.resource,
        )

    async def run(self) -> HubResult:
        call = self.call
        if call.method in _WRITES:
            return await self._write()
        if call.method == "GET" and len(call.segments) == 1:
            return await self._list()
        result = await service.handle(
            self.runtime, self.instance, self._vendor_call(call.query, b""), self.responses
        )
        return await self._mapped(result)

    async def _mapped(self, result: HubResult) -> HubResult:
        body = result.body
        if isinstance(body, dict) and body:
            body = (await self._from_vendor([body]))[0]
        elif isinstance(body, list):
            body = await self._from_vendor(body)
        return self._answer(result, body)

    async def _write(self) -> HubResult:
        call = self.call
        canonical = service._json_body(call)
        single = not isinstance(canonical, list)
        objects = [canonical] if single else canonical
        if not all(isinstance(o, dict) for o in objects):
            raise bad_request("A common resource takes a JSON object (or a list of objects)")
        towards, error = await transform(
            self.transformation, objects, from_vendor=False, limits=self.limits
        )
        self.error = error
        body = orjson.dumps(towards[0] if single else towards)
        result = await service.handle(
            self.runtime, self.instance, self._vendor_call(call.query, body), self.responses
        )
        return await self._mapped(result)

    def _query(self) -> CanonicalQuery:
        call = self.call
        where: Expr | None = _parsed(call.param("where"), parse)
        order = _parsed(call.param("orderBy"), parse_order_by) or ()
        fields = _parsed(call.param("fields"), parse_fields) or ()
        if where is None and not order and not fields:
            return _NO_QUERY
        try:
            return rewrite(
                self.transformation,
                self.resource.known_fields,
                where,
                order,
                fields,
                resource=self.resource.name,
            )
        except UnknownFieldError as exc:
            raise bad_request(str(exc)) from None

    def _vendor_query(self, query: CanonicalQuery, *, paged: bool) -> list[tuple[str, str]]:
        params = [
            (k, v)
            for k, v in self.call.query
            if k not in _QUERY_PARAMS and (paged or k not in ("page", "pageSize", "nextPage"))
        ]
        if query.vendor_where is not None:
            params.append(("where", to_ceql(query.vendor_where)))
        if query.vendor_order_by:
            params.append(("orderBy", _order_text(query.vendor_order_by)))
        if query.vendor_fields:
            params.append(("fields", ", ".join(render_field(f) for f in query.vendor_fields)))
        return params

    def _local(self, query: CanonicalQuery, records: list[Any]) -> list[Any]:
        if query.local_where is not None:
            local_where = query.local_where
            records = [r for r in records if evaluate(local_where, r)]
        if query.local_order_by:
            records = sort_records(records, query.local_order_by)
        if query.local_fields:
            records = [project(r, query.local_fields) for r in records]
        return records

    async def _list(self) -> HubResult:
        query = self._query()
        if query.local_order_by:
            return await self._sorted_here(query)
        vendor_call = self._vendor_call(tuple(self._vendor_query(query, paged=True)), b"")
        result = await service.handle(self.runtime, self.instance, vendor_call, self.responses)
        if not isinstance(result.body, list):
            return await self._mapped(result)
        body = self._local(query, await self._from_vendor(result.body))
        return self._answer(result, body)

    async def _sorted_here(self, query: CanonicalQuery) -> HubResult:
        """The whole list, mapped, filtered and sorted here, then paged with our own tokens."""
        runtime, instance, call = self.runtime, self.instance, self.call
        resource_path = "/".join(call.segments)
        page = paging.page_request(
            runtime.keyring,
            instance.id,
            resource_path,
            page=call.param("page"),
            page_size=call.param("pageSize"),
            next_page=call.param("nextPage"),
            default_size=instance.element.manifest.pagination.default_size,
            max_size=service._page_size_max(runtime, instance),
        )
        base = self._vendor_query(query, paged=False)
        everything: list[Any] = []
        token: str | None = None
        result: HubResult | None = None
        while result is None or token is not None:
            params = [*base, ("pageSize", str(paging.MAX_PAGE))]
            if token is not None:
                params.append(("nextPage", token))
            vendor_call = self._vendor_call(tuple(params), b"")
            result = await service.handle(runtime, instance, vendor_call, self.responses)
            if not isinstance(result.body, list):
                return await self._mapped(result)
            everything.extend(result.body)
            if len(everything) > service.MAX_LOCAL_RECORDS:
                raise bad_request(
                    f"More than {service.MAX_LOCAL_RECORDS} records match; "
                    "narrow the where clause to sort them"
                )
            token = result.headers.get(service.NEXT_PAGE_TOKEN)
        rows = self._local(query, await self._from_vendor(everything))
        start = page.cursor.offset if page.cursor is not None else (page.page - 1) * page.size
        body = rows[start : start + page.size]
        answer = self._answer(result, body)
        answer.headers.pop(service.NEXT_PAGE_TOKEN, None)
        if start + page.size < len(rows):
            answer.headers[service.NEXT_PAGE_TOKEN] = paging.encode(
                runtime.keyring, instance.id, resource_path, paging.Cursor(offset=start + page.size)
            )
        return answer
