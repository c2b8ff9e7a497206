"""What the SendGrid element needs beyond its manifest's data (sendgrid-api.md)."""

from __future__ import annotations

from typing import Any

from hubgate.elements.sdk import HookContext, VendorCalls, WriteContext
from hubgate.kit.errors import HubgateError, bad_request

SENDER_KEY = "sendgrid.sender"
# The short message shape Open Connectors' messaging hub took; each becomes its v3 place.
_SHORT_FIELDS = frozenset({"to", "cc", "bcc", "from", "subject", "message", "text", "html"})


async def can_send_mail(session: VendorCalls) -> None:
    """The check call proved the key; a key without ``mail.send`` would then fail every send
    with a 403, so it is refused now, with the reason (sendgrid-api.md section 1)."""
    answer = await session.call("GET", "/v3/scopes")
    scopes = answer.get("scopes") if isinstance(answer, dict) else None
    if not isinstance(scopes, list) or "mail.send" not in scopes:
        raise bad_request("The SendGrid API key may not send mail: give it the mail.send scope")


def _addresses(name: str, value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    found: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str) and item:
            found.append({"email": item})
        elif isinstance(item, dict) and isinstance(item.get("email"), str):
            found.append(item)
        else:
            raise bad_request(f"Field {name} must be an email address or a list of them")
    return found


def _short_form(body: dict[str, Any]) -> dict[str, Any]:
    """``{"to", "cc", "bcc", "from", "subject", "message" | "text" | "html"}`` as a v3 send."""
    unknown = sorted(set(body) - _SHORT_FIELDS)
    if unknown:
        raise bad_request(
            f"Unknown fields {', '.join(unknown)}: send SendGrid's v3 body (with"
            " personalizations) or the short form to, cc, bcc, from, subject, message"
        )
    personalization = {"to": _addresses("to", body["to"])}
    for kind in ("cc", "bcc"):
        if body.get(kind):
            personalization[kind] = _addresses(kind, body[kind])
    content = []
    text = body.get("text", body.get("message"))
    if isinstance(text, str) and text:
        content.append({"type": "text/plain", "value": text})
    if isinstance(body.get("html"), str) and body["html"]:
        content.append({"type": "text/html", "value": body["html"]})
    mail: dict[str, Any] = {"personalizations": [personalization]}
    if "from" in body:
        mail["from"] = _addresses("from", body["from"])[0]
    if body.get("subject") is not None:
        mail["subject"] = body["subject"]
    if content:
        mail["content"] = content
    return mail


def mail_body(body: Any, write: WriteContext) -> Any:
    """The ``/v3/mail/send`` body: SendGrid's own as given, or built from the short form; the
    instance's ``sendgrid.sender`` is the sender when the body names none (D54)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    mail = dict(body) if "personalizations" in body else _short_form(body) if "to" in body else None
    if mail is None:
        raise bad_request("A message needs recipients: personalizations, or to")
    if "from" not in mail:
        sender = write.config.get(SENDER_KEY)
        if not sender:
            raise bad_request(
                f"A message needs a sender: give from, or set the instance's {SENDER_KEY}"
            )
        mail["from"] = {"email": sender}
    return mail


async def message(ctx: HookContext) -> Any:
    """``GET /messages/{id}``: by the Email Activity id, or by the ``X-Message-Id`` a send
    answered, which is only the prefix of each recipient's id (sendgrid-api.md section 2)."""
    message_id = ctx.matched.path_values["id"]
    try:
        return await ctx.session.call("GET", "/v3/messages/{id}", values={"id": message_id})
    except HubgateError as error:
        if error.status != 404 or "." in message_id:
            raise
    escaped = message_id.replace("\\", "\\\\").replace('"', '\\"')
    found = await ctx.session.call(
        "GET", "/v3/messages", params=[("query", f'msg_id LIKE "{escaped}%"'), ("limit", "1")]
    )
    rows = found.get("messages") if isinstance(found, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise HubgateError(404, f"No message found with id {message_id}")
    full_id = str(rows[0].get("msg_id", ""))
    return await ctx.session.call("GET", "/v3/messages/{id}", values={"id": full_id})
