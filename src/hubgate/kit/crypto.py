"""Envelope encryption for secrets at rest, and the secret/HMAC helpers of D6.

Every secret gets its own random 256-bit data key and nonce (AES-256-GCM). The data key is
wrapped (AES-256-GCM again) under one of the keyring's key-encryption keys, so rotating a key
only rewrites the small wrapped key, never the data. The associated data ("aad") names the row
and field a ciphertext belongs to, so a ciphertext copied into another row or field does not
open. There is no plaintext mode: anything that is not a valid ``v1`` ciphertext is an error.

Stored form: ``v1.<keyId>.<wrappedKey>.<nonce>.<ct>``, each binary part urlsafe base64 without
padding; ``wrappedKey`` is the wrapping nonce followed by the wrapped data key and its tag.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DecryptionError",
    "Keyring",
    "KeyringError",
    "new_org_secret",
    "new_secret",
]

_VERSION = "v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_BYTES = _NONCE_BYTES + _KEY_BYTES + _TAG_BYTES
# Key ids appear inside the dotted ciphertext and inside the wrapping aad, so they must not
# contain "." (the part separator) or "|" (the aad separator).
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_GENERATED_ID = re.compile(r"k([0-9]{1,9})")
# Domain separation: a data ciphertext can never be confused with a wrapped key, even if one
# were pasted in place of the other.
_DATA_AAD_PREFIX = b"hubgate|v1|data|"
_WRAP_AAD_PREFIX = b"hubgate|v1|wrap|"


def new_secret() -> str:
    """A user secret or instance token: 256 random bits, standard base64 (44 chars)."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def new_org_secret() -> str:
    """An organization secret: 256 random bits as 64 lowercase hex characters."""
    return secrets.token_hex(32)


class DecryptionError(ValueError):
    """A ciphertext did not open: tampered, wrong aad, unknown or retired key, or malformed.

    The message never contains key material, plaintext or the aad's values beyond the reason.
    """


class KeyringError(ValueError):
    """A keyring document is invalid, or an operation on the keyring is not allowed."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Strict urlsafe base64 without padding.

    Only the canonical encoding is accepted: base64 leaves a few low bits of the last
    character unused, and accepting them would let two different strings be the same
    ciphertext, which makes "any change fails" untrue.
    """
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise DecryptionError("malformed ciphertext")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed ciphertext") from None
    if _b64e(raw) != text:
        raise DecryptionError("malformed ciphertext")
    return raw


def _data_aad(aad: str) -> bytes:
    return _DATA_AAD_PREFIX + aad.encode("utf-8")


def _wrap_aad(key_id: str, aad: str) -> bytes:
    # The key id is in the wrapping aad so a wrapped key cannot be relabelled with another id.
    return _WRAP_AAD_PREFIX + key_id.encode("ascii") + b"|" + aad.encode("utf-8")


class _Parsed:
    __slots__ = ("ct", "key_id", "nonce", "wrapped")

    def __init__(self, key_id: str, wrapped: bytes, nonce: bytes, ct: bytes) -> None:
        self.key_id = key_id
        self.wrapped = wrapped
        self.nonce = nonce
        self.ct = ct


def _parse(ciphertext: str) -> _Parsed:
    if not isinstance(ciphertext, str):
        raise DecryptionError("malformed ciphertext")
    parts = ciphertext.split(".")
    if len(parts) != 5 or parts[0] != _VERSION:
        raise DecryptionError("malformed ciphertext")
    _, key_id, wrapped_s, nonce_s, ct_s = parts
    if not _KEY_ID.fullmatch(key_id):
        raise DecryptionError("malformed ciphertext")
    wrapped = _b64d(wrapped_s)
    nonce = _b64d(nonce_s)
    ct = _b64d(ct_s)
    if len(wrapped) != _WRAPPED_BYTES or len(nonce) != _NONCE_BYTES or len(ct) < _TAG_BYTES:
        raise DecryptionError("malformed ciphertext")
    return _Parsed(key_id, wrapped, nonce, ct)


def _decode_key(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise KeyringError(f"keyring: {what} must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"keyring: {what} is not valid base64") from None
    if len(raw) != _KEY_BYTES:
        raise KeyringError(f"keyring: {what} must be {_KEY_BYTES} bytes")
    return raw


class Keyring:
    """Key-encryption keys by id (one primary), retired ids, and one HMAC key.

    Retiring a key destroys its material: ciphertexts still wrapped under it stop opening, for
    good. Its id stays listed as retired so it is never issued again and errors can say why.
    The HMAC key never rotates, because the digests made with it are lookup keys (D6).
    """

    __slots__ = ("_aeads", "_hmac_key", "_keys", "_primary", "_retired")

    def __init__(
        self,
        keys: dict[str, bytes],
        primary: str,
        hmac_key: bytes,
        retired: list[str] | None = None,
    ) -> None:
        if not keys:
            raise KeyringError("keyring: at least one key is required")
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise KeyringError(f"keyring: invalid key id {key_id!r}")
            if len(key) != _KEY_BYTES:
                raise KeyringError(f"keyring: key {key_id} must be {_KEY_BYTES} bytes")
        if primary not in keys:
            raise KeyringError("keyring: the primary key id is not among the keys")
        if len(hmac_key) != _KEY_BYTES:
            raise KeyringError(f"keyring: the HMAC key must be {_KEY_BYTES} bytes")
        retired_list = list(retired or [])
        for key_id in retired_list:
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise KeyringError(f"keyring: invalid retired key id {key_id!r}")
            if key_id in keys:
                raise KeyringError(f"keyring: key {key_id} is both active and retired")
        self._keys: dict[str, bytes] = dict(keys)
        self._primary = primary
        self._hmac_key = bytes(hmac_key)
        self._retired: list[str] = list(dict.fromkeys(retired_list))
        # AESGCM objects are reused: building one per call costs more than the GCM pass on a
        # short secret.
        self._aeads: dict[str, AESGCM] = {k: AESGCM(v) for k, v in self._keys.items()}

    # --- construction and persistence -------------------------------------------------------

    @classmethod
    def generate(cls) -> Keyring:
        return cls({"k1": secrets.token_bytes(_KEY_BYTES)}, "k1", secrets.token_bytes(_KEY_BYTES))

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse the keyring document (also the form of ``HUBGATE_KEYRING``)."""
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise KeyringError("keyring: not valid JSON") from None
        if not isinstance(doc, dict):
            raise KeyringError("keyring: expected a JSON object")
        if doc.get("version") != 1:
            raise KeyringError("keyring: unsupported version")
        raw_keys = doc.get("keys")
        if not isinstance(raw_keys, dict):
            raise KeyringError("keyring: 'keys' must be an object")
        keys = {}
        for key_id, value in raw_keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise KeyringError(f"keyring: invalid key id {key_id!r}")
            keys[key_id] = _decode_key(value, f"key {key_id}")
        primary = doc.get("primary")
        if not isinstance(primary, str):
            raise KeyringError("keyring: 'primary' must be a key id")
        retired = doc.get("retired", [])
        if not isinstance(retired, list):
            raise KeyringError("keyring: 'retired' must be a list")
        hmac_key = _decode_key(doc.get("hmac"), "hmac")
        return cls(keys, primary, hmac_key, retired)

    def to_json(self) -> str:
        doc = {
            "version": 1,
            "primary": self._primary,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self._keys.items()},
            "retired": list(self._retired),
            "hmac": base64.b64encode(self._hmac_key).decode("ascii"),
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def load(cls, path: Path) -> Keyring:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600: readers see the old file or the new, never half."""
        path = Path(path)
        tmp = _write_temp(path.parent, self.to_json())
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """Load the key file, or create it (0600) when missing.

        Creation links a fully written temp file into place, which fails if another process
        got there first; then that process's keyring is loaded, so two starting servers can
        never end up with different keys.
        """
        path = Path(path)
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = cls.generate()
        tmp = _write_temp(path.parent, ring.to_json())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return cls.load(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return ring

    # --- key management ---------------------------------------------------------------------

    @property
    def primary_id(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Active (not retired) key ids, oldest first."""
        return tuple(self._keys)

    @property
    def retired_ids(self) -> tuple[str, ...]:
        return tuple(self._retired)

    def rotate(self) -> str:
        """Add a fresh key and make it primary; older keys keep decrypting. Returns its id."""
        used = [*self._keys, *self._retired]
        numbers = [int(m.group(1)) for k in used if (m := _GENERATED_ID.fullmatch(k))]
        key_id = f"k{max(numbers, default=0) + 1}"
        while key_id in used:  # only reachable with hand-made ids; stay unique regardless
            key_id = f"k{secrets.token_hex(4)}"
        key = secrets.token_bytes(_KEY_BYTES)
        self._keys[key_id] = key
        self._aeads[key_id] = AESGCM(key)
        self._primary = key_id
        return key_id

    def retire(self, key_id: str) -> None:
        """Destroy a non-primary key; its ciphertexts fail from now on (rewrap them first)."""
        if key_id == self._primary:
            raise KeyringError("keyring: the primary key cannot be retired; rotate first")
        if key_id not in self._keys:
            raise KeyringError(f"keyring: no active key {key_id!r}")
        del self._keys[key_id]
        del self._aeads[key_id]
        self._retired.append(key_id)

    # --- envelope encryption ----------------------------------------------------------------

    def encrypt(self, plaintext: str, aad: str) -> str:
        """Encrypt under a fresh data key, bound to ``aad`` (e.g. ``"instances:42:token"``)."""
        data_key = secrets.token_bytes(_KEY_BYTES)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ct = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), _data_aad(aad))
        wrapped = self._wrap(self._primary, data_key, aad)
        return f"{_VERSION}.{self._primary}.{_b64e(wrapped)}.{_b64e(nonce)}.{_b64e(ct)}"

    def decrypt(self, ciphertext: str, aad: str) -> str:
        parsed = _parse(ciphertext)
        data_key = self._unwrap(parsed, aad)
        return self._open(parsed, data_key, aad)

    def needs_rewrap(self, ciphertext: str) -> bool:
        """True when the ciphertext's data key is wrapped under a key other than the primary."""
        return _parse(ciphertext).key_id != self._primary

    def rewrap(self, ciphertext: str, aad: str) -> str:
        """Re-wrap the data key under the primary key; the data part is kept byte for byte.

        The whole ciphertext is authenticated first, so a damaged value fails here instead of
        being re-issued under the new key looking healthy.
        """
        parsed = _parse(ciphertext)
        data_key = self._unwrap(parsed, aad)
        self._open(parsed, data_key, aad)
        if parsed.key_id == self._primary:
            return ciphertext
        wrapped = self._wrap(self._primary, data_key, aad)
        nonce_s, ct_s = ciphertext.split(".")[3:]
        return f"{_VERSION}.{self._primary}.{_b64e(wrapped)}.{nonce_s}.{ct_s}"

    def _wrap(self, key_id: str, data_key: bytes, aad: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + self._aeads[key_id].encrypt(nonce, data_key, _wrap_aad(key_id, aad))

    def _unwrap(self, parsed: _Parsed, aad: str) -> bytes:
        aead = self._aeads.get(parsed.key_id)
        if aead is None:
            if parsed.key_id in self._retired:
                raise DecryptionError(f"ciphertext is under retired key {parsed.key_id}")
            raise DecryptionError(f"ciphertext is under unknown key {parsed.key_id}")
        nonce, body = parsed.wrapped[:_NONCE_BYTES], parsed.wrapped[_NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, body, _wrap_aad(parsed.key_id, aad))
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    @staticmethod
    def _open(parsed: _Parsed, data_key: bytes, aad: str) -> str:
        try:
            raw = AESGCM(data_key).decrypt(parsed.nonce, parsed.ct, _data_aad(aad))
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:  # only a writer other than encrypt() could produce this
            raise DecryptionError("ciphertext is not UTF-8 text") from None

    # --- HMAC for secrets stored as lookups (D6) -------------------------------------------

    def hmac_digest(self, value: str) -> str:
        return hmac.new(self._hmac_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def hmac_equals(self, value: str, digest: str) -> bool:
        """Constant-time check that ``digest`` is the HMAC of ``value``."""
        expected = self.hmac_digest(value)
        # compare_digest needs both sides ASCII-only as str; compare bytes to stay total.
        return hmac.compare_digest(expected.encode("ascii"), digest.encode("utf-8"))

    def __repr__(self) -> str:
        # Never show key material, even in a debugger or a traceback's locals.
        return f"Keyring(primary={self._primary!r}, keys={list(self._keys)!r})"


def _write_temp(directory: Path, text: str) -> str:
    """A fully written, fsynced 0600 temp file next to its destination (same filesystem)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".keyring-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp is 0600 already; explicit so a future change can't widen
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the rename/link itself durable; not possible on every platform, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
