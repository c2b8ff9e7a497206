"""Phone numbers for sale, purchased numbers and usage records of the Twilio simulator.

The numbers for sale are a fixed, deterministic catalogue built from ranges reserved for fiction
(NANP 555-01xx, Ofcom's drama ranges), so nothing the simulator hands out can reach a real phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sims.twilio_sim_model import (
    API_VERSION,
    E164,
    Account,
    Form,
    JsonDict,
    Resource,
    TwilioError,
    format_nanp,
    new_sid,
    now,
)

NUMBER_TYPES = {"Local": "local", "Mobile": "mobile", "TollFree": "toll_free"}
NUMBER_MONTHLY_PRICE = 1.15


@dataclass(frozen=True)
class Block:
    """A run of ten numbers `prefix + 00..09` sharing location data and capabilities."""

    prefix: str
    locality: str | None
    region: str | None
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    rate_center: str | None
    lata: str | None
    voice: bool = True
    sms: bool = True
    mms: bool = True
    address_requirements: str = "none"


# (ISO code, name) → number type → blocks. US has no mobile numbers and GB's local numbers
# cannot text, as with Twilio, so the type and capability filters have something to filter.
CATALOG: dict[tuple[str, str], dict[str, list[Block]]] = {
    ("US", "United States"): {
        "local": [
            Block("+1415555010", "San Francisco", "CA", "94103", 37.77, -122.41, "SNFC", "722"),
            Block("+1212555010", "New York", "NY", "10001", 40.75, -73.99, "NWYRCYZN01", "132"),
            Block("+1808555010", "Hilo", "HI", "96720", 19.72, -155.09, "HILO", "834", mms=False),
        ],
        "toll_free": [Block("+1888555010", None, None, None, None, None, None, None, mms=False)],
    },
    ("CA", "Canada"): {
        "local": [
            Block("+1416555010", "Toronto", "ON", "M5H", 43.65, -79.38, "TORONTO", None),
            Block("+1604555010", "Vancouver", "BC", "V6B", 49.28, -123.12, "VANCOUVER", None),
        ],
        "toll_free": [Block("+1877555010", None, None, None, None, None, None, None, mms=False)],
    },
    ("GB", "United Kingdom"): {
        "local": [
            Block(
                "+44207946010", "London", None, None, 51.51, -0.13, None, None,
                sms=False, mms=False, address_requirements="any",
            ),
        ],
        "mobile": [
            Block("+44770090010", None, None, None, None, None, None, None, mms=False),
        ],
        "toll_free": [
            Block("+44808157010", None, None, None, None, None, None, None, sms=False, mms=False),
        ],
    },
}  # fmt: skip


def countries(account: Account) -> list[JsonDict]:
    base = f"{account.uri}/AvailablePhoneNumbers"
    result = []
    for (code, name), types in CATALOG.items():
        result.append(
            {
                "country_code": code,
                "country": name,
                "uri": f"{base}/{code}.json",
                "beta": False,
                "subresource_uris": {
                    kind: f"{base}/{code}/{path}.json"
                    for path, kind in NUMBER_TYPES.items()
                    if kind in types
                },
            }
        )
    return result


def _blocks(country: str, kind: str) -> list[Block] | None:
    for (code, _), types in CATALOG.items():
        if code == country:
            return types.get(kind)
    return None


def _lookup(phone_number: str) -> tuple[str, str, Block] | None:
    for (code, _), types in CATALOG.items():
        for kind, blocks in types.items():
            for block in blocks:
                if phone_number[:-1] == block.prefix:
                    return code, kind, block
    return None


def _owned_numbers(accounts: list[Account]) -> set[str]:
    return {n.fields["phone_number"] for a in accounts for n in a.numbers.values()}


def _contains_pattern(contains: str) -> re.Pattern[str]:
    # Twilio's Contains takes digits, letters (phone keypad) and `*` as a one-digit wildcard;
    # letters are mapped to their keypad digit.
    letters = ["", "", "abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz"]
    keypad = {c: str(digit) for digit, group in enumerate(letters) for c in group}
    parts = []
    for ch in contains.lower():
        if ch == "*":
            parts.append(r"\d")
        elif ch.isdigit():
            parts.append(ch)
        elif ch in keypad:
            parts.append(keypad[ch])
    return re.compile("".join(parts))


def available_numbers(
    accounts: list[Account], country: str, kind: str, query: dict[str, str]
) -> list[JsonDict] | None:
    """Numbers for sale matching the query, or None when the country/type does not exist."""
    blocks = _blocks(country, kind)
    if blocks is None:
        return None
    owned = _owned_numbers(accounts)
    area_code = query.get("AreaCode")
    contains = _contains_pattern(query["Contains"]) if query.get("Contains") else None
    wanted = {
        cap: query[param].strip().lower() == "true"
        for param, cap in (("SmsEnabled", "SMS"), ("MmsEnabled", "MMS"), ("VoiceEnabled", "voice"))
        if param in query
    }
    result = []
    for block in blocks:
        capabilities = {"voice": block.voice, "SMS": block.sms, "MMS": block.mms}
        if any(capabilities[cap] != value for cap, value in wanted.items()):
            continue
        if query.get("InRegion") and query["InRegion"] != block.region:
            continue
        if query.get("InPostalCode") and query["InPostalCode"] != block.postal_code:
            continue
        for digit in range(10):
            number = f"{block.prefix}{digit}"
            if number in owned:
                continue
            if area_code and not (number.startswith("+1") and number[2:5] == area_code):
                continue
            if contains and not contains.search(number[1:]):
                continue
            result.append(
                {
                    "friendly_name": format_nanp(number),
                    "phone_number": number,
                    "lata": block.lata,
                    "locality": block.locality,
                    "rate_center": block.rate_center,
                    "latitude": block.latitude,
                    "longitude": block.longitude,
                    "region": block.region,
                    "postal_code": block.postal_code,
                    "iso_country": country,
                    "address_requirements": block.address_requirements,
                    "beta": False,
                    # Twilio spells these keys voice/SMS/MMS here (unlike IncomingPhoneNumbers).
                    "capabilities": capabilities,
                }
            )
    return result


def buy_number(accounts: list[Account], account: Account, form: Form) -> Resource:
    phone_number = form.get("PhoneNumber")
    area_code = form.get("AreaCode")
    owned = _owned_numbers(accounts)
    if phone_number:
        if not E164.match(phone_number):
            raise TwilioError(400, 21421, f"PhoneNumber {phone_number} is invalid.")
        if phone_number in owned:
            raise TwilioError(400, 21422, f"PhoneNumber {phone_number} is not available.")
    elif area_code:
        candidates = available_numbers(accounts, "US", "local", {"AreaCode": area_code}) or []
        if not candidates:
            raise TwilioError(400, 21452, f"No phone numbers found in area code {area_code}.")
        phone_number = candidates[0]["phone_number"]
    else:
        raise TwilioError(400, 21451, "A PhoneNumber or AreaCode is required.")
    # Numbers outside the catalogue (say Twilio's magic +15005550006) are sold as US local
    # numbers with every capability, which is what tests buying "any number" expect.
    found = _lookup(phone_number)
    kind, block = (found[1], found[2]) if found else ("local", None)
    created = now()
    sid = new_sid("PN")

    def url(name: str) -> str | None:
        return form.get(name) or None

    def method(name: str) -> str:
        return (form.get(name) or "POST").upper()

    number = Resource(
        sid,
        {
            "account_sid": account.sid,
            "address_sid": url("AddressSid"),
            "address_requirements": block.address_requirements if block else "none",
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": {
                "voice": block.voice if block else True,
                "sms": block.sms if block else True,
                "mms": block.mms if block else True,
                "fax": False,
            },
            "date_created": created,
            "date_updated": created,
            "friendly_name": form.get("FriendlyName") or format_nanp(phone_number),
            "identity_sid": url("IdentitySid"),
            "phone_number": phone_number,
            "origin": "twilio",
            "sid": sid,
            "sms_application_sid": url("SmsApplicationSid"),
            "sms_fallback_method": method("SmsFallbackMethod"),
            "sms_fallback_url": url("SmsFallbackUrl"),
            "sms_method": method("SmsMethod"),
            "sms_url": url("SmsUrl"),
            "status_callback": url("StatusCallback"),
            "status_callback_method": method("StatusCallbackMethod"),
            "trunk_sid": url("TrunkSid"),
            "uri": f"{account.uri}/IncomingPhoneNumbers/{sid}.json",
            "voice_receive_mode": "voice",
            "voice_application_sid": url("VoiceApplicationSid"),
            "voice_caller_id_lookup": (form.get("VoiceCallerIdLookup") or "").lower() == "true",
            "voice_fallback_method": method("VoiceFallbackMethod"),
            "voice_fallback_url": url("VoiceFallbackUrl"),
            "voice_method": method("VoiceMethod"),
            "voice_url": url("VoiceUrl"),
            "emergency_status": "Inactive",
            "emergency_address_sid": url("EmergencyAddressSid"),
            "emergency_address_status": "unregistered",
            "bundle_sid": url("BundleSid"),
            "status": "in-use",
            "type": kind.replace("_", "-"),
        },
    )
    account.numbers[sid] = number
    return number


# category → (description, count unit, usage unit)
USAGE_CATEGORIES: dict[str, tuple[str, str, str]] = {
    "sms": ("SMS Messages", "messages", "messages"),
    "sms-outbound": ("Outbound SMS Messages", "messages", "messages"),
    "sms-inbound": ("Inbound SMS Messages", "messages", "messages"),
    "calls": ("Voice Minutes", "calls", "minutes"),
    "phonenumbers": ("Phone Numbers", "numbers", "numbers"),
    "totalprice": ("Total Price", "", "usd"),
}


def _price(resources: list[Resource]) -> float:
    return sum(abs(float(r.fields["price"])) for r in resources if r.fields["price"])


def usage_records(
    account: Account, category: str | None, start: date | None, end: date | None
) -> list[JsonDict]:
    """Usage derived from the account's state: what it sent, called and bought in the period."""
    start = start or account.resource.fields["date_created"].date()
    end = end or now().date()

    def in_period(resource: Resource) -> bool:
        created: datetime = resource.fields["date_created"]
        return start <= created.astimezone(UTC).date() <= end

    messages = [m for m in account.messages.values() if in_period(m)]
    outbound = [m for m in messages if m.fields["direction"] != "inbound"]
    inbound = [m for m in messages if m.fields["direction"] == "inbound"]
    calls = [c for c in account.calls.values() if in_period(c)]
    numbers = [n for n in account.numbers.values() if in_period(n)]

    def segments(items: list[Resource]) -> int:
        return sum(int(m.fields["num_segments"]) for m in items)

    # Billed minutes round up with a one-minute minimum, as in the price of a completed call.
    billed = [c for c in calls if c.fields["price"]]
    minutes = sum(max(1, -(-int(c.fields["duration"] or 0) // 60)) for c in billed)
    # category → (count, usage, price); counts and usage are strings on the wire.
    totals: dict[str, tuple[str | None, str, float]] = {
        "sms": (str(segments(messages)), str(segments(messages)), _price(messages)),
        "sms-outbound": (str(segments(outbound)), str(segments(outbound)), _price(outbound)),
        "sms-inbound": (str(segments(inbound)), str(segments(inbound)), _price(inbound)),
        "calls": (str(len(calls)), str(minutes), _price(calls)),
        "phonenumbers": (str(len(numbers)), str(len(numbers)), len(numbers) * NUMBER_MONTHLY_PRICE),
    }
    # sms-inbound/-outbound are parts of sms, so they must not be added again.
    grand_total = sum(totals[name][2] for name in ("sms", "calls", "phonenumbers"))
    totals["totalprice"] = (None, f"{grand_total:.5f}", grand_total)

    base = f"{account.uri}/Usage/Records"
    as_of = now().replace(microsecond=0).isoformat()
    records = []
    for name, (description, count_unit, usage_unit) in USAGE_CATEGORIES.items():
        if category is not None and name != category:
            continue
        count, usage, price = totals[name]
        period = f"Category={name}&StartDate={start.isoformat()}&EndDate={end.isoformat()}"
        records.append(
            {
                "account_sid": account.sid,
                "api_version": API_VERSION,
                "as_of": as_of,
                "category": name,
                "count": count,
                "count_unit": count_unit,
                "description": description,
                "end_date": end.isoformat(),
                "price": round(price, 5),
                "price_unit": "usd",
                "start_date": start.isoformat(),
                "subresource_uris": {
                    key: f"{base}/{path}.json?Category={name}"
                    for key, path in (
                        ("all_time", "AllTime"),
                        ("daily", "Daily"),
                        ("last_month", "LastMonth"),
                        ("monthly", "Monthly"),
                        ("this_month", "ThisMonth"),
                        ("today", "Today"),
                        ("yearly", "Yearly"),
                        ("yesterday", "Yesterday"),
                    )
                },
                "uri": f"{base}.json?{period}",
                "usage": usage,
                "usage_unit": usage_unit,
            }
        )
    return records
