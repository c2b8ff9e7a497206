from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest

from hubgate.kit.crypto import (
    DecryptionError,
    Keyring,
    KeyringError,
    new_org_secret,
    new_secret,
)

AAD = "instances:42:configuration.password"


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _flip_char(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    ch = text[index]
    return text[:index] + alphabet[(alphabet.index(ch) + 1) % 64] + text[index + 1 :]


# --- secrets -------------------------------------------------------------------------------


def test_new_secret_is_256_bits_of_standard_base64() -> None:
    values = {new_secret() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert len(value) == 44
        assert value.endswith("=")
        assert len(base64.b64decode(value, validate=True)) == 32


def test_new_org_secret_is_64_lowercase_hex() -> None:
    values = {new_org_secret() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert re.fullmatch(r"[0-9a-f]{64}", value)


# --- encrypt / decrypt ----------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", ["", "s3cr3t", "pässwörd ✓ 秘密", "x" * 10_000])
def test_roundtrip(ring: Keyring, plaintext: str) -> None:
    ct = ring.encrypt(plaintext, AAD)
    assert plaintext == ring.decrypt(ct, AAD)


def test_format_and_fresh_randomness(ring: Keyring) -> None:
    a = ring.encrypt("same", AAD)
    b = ring.encrypt("same", AAD)
    assert a != b
    parts = a.split(".")
    assert len(parts) == 5
    assert parts[0] == "v1"
    assert parts[1] == ring.primary_id == "k1"
    for part in parts[2:]:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", part)  # urlsafe, no padding
    assert len(_b64d(parts[2])) == 12 + 32 + 16  # wrap nonce + data key + tag
    assert len(_b64d(parts[3])) == 12
    assert len(_b64d(parts[4])) == len("same") + 16
    # a fresh data key and nonce per call
    assert a.split(".")[2:4] != b.split(".")[2:4]
    assert "same" not in a


@pytest.mark.parametrize(
    "other_aad",
    [
        "instances:43:configuration.password",  # another row
        "instances:42:configuration.token",  # another field
        "users:42:configuration.password",  # another table
        "instances:42:configuration.password ",
        "",
    ],
)
def test_wrong_aad_fails(ring: Keyring, other_aad: str) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    with pytest.raises(DecryptionError):
        ring.decrypt(ct, other_aad)


def test_every_single_character_change_fails(ring: Keyring) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    prefix = len("v1.k1.")
    for i in range(prefix, len(ct)):
        if ct[i] == ".":
            continue
        with pytest.raises(DecryptionError):
            ring.decrypt(_flip_char(ct, i), AAD)


@pytest.mark.parametrize("part", [2, 3, 4])
def test_swapped_parts_between_ciphertexts_fail(ring: Keyring, part: int) -> None:
    a = ring.encrypt("alpha", AAD).split(".")
    b = ring.encrypt("bravo", AAD).split(".")
    a[part] = b[part]
    with pytest.raises(DecryptionError):
        ring.decrypt(".".join(a), AAD)


def test_relabelled_key_id_fails(ring: Keyring) -> None:
    ring.rotate()  # k2 primary, k1 still active
    ct = ring.encrypt("s3cr3t", AAD)
    with pytest.raises(DecryptionError):
        ring.decrypt(ct.replace("v1.k2.", "v1.k1.", 1), AAD)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "s3cr3t",  # a plaintext is never accepted
        "v1",
        "v1.k1",
        "v1.k1.a.b",
        "v1.k1.a.b.c.d",
        "v2.k1.AAAA.AAAA.AAAA",
        "v1.k1.!!!!.AAAA.AAAA",
        "v1.k1.AAAA=.AAAA.AAAA",
        "v1.k1.A.AAAA.AAAA",
        "v1.k1..AAAA.AAAA",
        "v1.k9.AAAA.AAAA.AAAA",
        "v1.k 1.AAAA.AAAA.AAAA",
    ],
)
def test_malformed_input_fails(ring: Keyring, garbage: str) -> None:
    with pytest.raises(DecryptionError):
        ring.decrypt(garbage, AAD)


def test_truncated_or_extended_ciphertext_fails(ring: Keyring) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    with pytest.raises(DecryptionError):
        ring.decrypt(ct[:-1], AAD)
    with pytest.raises(DecryptionError):
        ring.decrypt(ct + "A", AAD)
    with pytest.raises(DecryptionError):
        ring.decrypt(ct + "AAAA", AAD)


def test_other_keyring_cannot_decrypt(ring: Keyring) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    with pytest.raises(DecryptionError):
        Keyring.generate().decrypt(ct, AAD)


def test_decryption_error_is_a_value_error_without_secrets(ring: Keyring) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    with pytest.raises(ValueError, match="authentication") as info:
        ring.decrypt(ct, "instances:1:x")
    assert isinstance(info.value, DecryptionError)
    assert "s3cr3t" not in str(info.value)
    assert ct not in str(info.value)


# --- rotation ------------------------------------------------------------------------------


def test_rotate_then_old_ciphertexts_still_decrypt(ring: Keyring) -> None:
    old = ring.encrypt("old secret", AAD)
    new_id = ring.rotate()
    assert new_id == "k2"
    assert ring.primary_id == "k2"
    assert ring.key_ids == ("k1", "k2")
    assert ring.decrypt(old, AAD) == "old secret"
    fresh = ring.encrypt("new secret", AAD)
    assert fresh.startswith("v1.k2.")
    assert ring.decrypt(fresh, AAD) == "new secret"


def test_rewrap_moves_to_new_key_and_keeps_the_data_part(ring: Keyring) -> None:
    old = ring.encrypt("s3cr3t", AAD)
    assert not ring.needs_rewrap(old)
    ring.rotate()
    assert ring.needs_rewrap(old)
    moved = ring.rewrap(old, AAD)
    assert moved.startswith("v1.k2.")
    assert not ring.needs_rewrap(moved)
    assert moved.split(".")[3:] == old.split(".")[3:]  # nonce and data ciphertext unchanged
    assert moved.split(".")[2] != old.split(".")[2]
    assert ring.decrypt(moved, AAD) == "s3cr3t"
    assert ring.rewrap(moved, AAD) == moved  # already on the primary: nothing to do


def test_rewrap_refuses_wrong_aad_and_tampered_data(ring: Keyring) -> None:
    old = ring.encrypt("s3cr3t", AAD)
    ring.rotate()
    with pytest.raises(DecryptionError):
        ring.rewrap(old, "instances:43:configuration.password")
    with pytest.raises(DecryptionError):
        ring.rewrap(_flip_char(old, len(old) - 3), AAD)


def test_retire_makes_old_ciphertexts_fail(ring: Keyring) -> None:
    old = ring.encrypt("s3cr3t", AAD)
    ring.rotate()
    moved = ring.rewrap(old, AAD)
    ring.retire("k1")
    assert ring.key_ids == ("k2",)
    assert ring.retired_ids == ("k1",)
    with pytest.raises(DecryptionError, match="retired"):
        ring.decrypt(old, AAD)
    with pytest.raises(DecryptionError):
        ring.rewrap(old, AAD)
    assert ring.decrypt(moved, AAD) == "s3cr3t"
    # a retired id is never issued again
    assert ring.rotate() == "k3"


def test_retire_refuses_primary_and_unknown(ring: Keyring) -> None:
    with pytest.raises(KeyringError, match="primary"):
        ring.retire("k1")
    with pytest.raises(KeyringError):
        ring.retire("k7")
    assert ring.key_ids == ("k1",)


# --- HMAC -------------------------------------------------------------------------------------


def test_hmac_digest_and_equals(ring: Keyring) -> None:
    token = new_secret()
    digest = ring.hmac_digest(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert ring.hmac_digest(token) == digest
    assert ring.hmac_equals(token, digest)
    assert not ring.hmac_equals(token + "x", digest)
    assert not ring.hmac_equals(token, digest[:-1] + ("0" if digest[-1] != "0" else "1"))
    assert not ring.hmac_equals(token, "")
    assert not ring.hmac_equals(token, "é" * 64)
    # a different server key gives a different digest
    assert Keyring.generate().hmac_digest(token) != digest


def test_hmac_key_survives_rotation(ring: Keyring) -> None:
    digest = ring.hmac_digest("token")
    ring.rotate()
    ring.retire("k1")
    assert ring.hmac_equals("token", digest)


# --- persistence --------------------------------------------------------------------------


def test_save_and_load_roundtrip(ring: Keyring, tmp_path: Path) -> None:
    old = ring.encrypt("s3cr3t", AAD)
    ring.rotate()
    ring.rotate()
    ring.retire("k1")
    ring.retire("k2")
    newer = ring.encrypt("newer", AAD)
    path = tmp_path / "keyring.json"
    ring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert doc["primary"] == "k3"
    assert set(doc["keys"]) == {"k3"}
    assert doc["retired"] == ["k1", "k2"]
    assert len(base64.b64decode(doc["hmac"])) == 32
    loaded = Keyring.load(path)
    assert loaded.primary_id == "k3"
    assert loaded.retired_ids == ("k1", "k2")
    assert loaded.decrypt(newer, AAD) == "newer"
    with pytest.raises(DecryptionError):
        loaded.decrypt(old, AAD)
    assert loaded.hmac_digest("t") == ring.hmac_digest("t")
    assert loaded.rotate() == "k4"
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_save_replaces_and_keeps_mode_0600(ring: Keyring, tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text("old")
    path.chmod(0o644)
    ring.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.load(path).primary_id == "k1"


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keyring.json"
    created = Keyring.load_or_create(path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ct = created.encrypt("s3cr3t", AAD)
    again = Keyring.load_or_create(path)
    assert again.decrypt(ct, AAD) == "s3cr3t"
    assert sorted(os.listdir(path.parent)) == ["keyring.json"]


def test_json_roundtrip_as_from_environment(ring: Keyring) -> None:
    ct = ring.encrypt("s3cr3t", AAD)
    text = ring.to_json()
    assert Keyring.from_json(text).decrypt(ct, AAD) == "s3cr3t"
    compact = json.dumps(json.loads(text))  # an env var is usually one line
    assert Keyring.from_json(compact).decrypt(ct, AAD) == "s3cr3t"


def _doc(ring: Keyring) -> dict[str, object]:
    doc: dict[str, object] = json.loads(ring.to_json())
    return doc


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=2),
        lambda d: d.pop("version"),
        lambda d: d.update(primary="k9"),
        lambda d: d.update(keys={}),
        lambda d: d.update(keys={"k1": base64.b64encode(b"short").decode()}),
        lambda d: d.update(keys={"k1": "not base64!"}),
        lambda d: d.update(keys={"k.1": base64.b64encode(bytes(32)).decode()}, primary="k.1"),
        lambda d: d.update(hmac=base64.b64encode(bytes(16)).decode()),
        lambda d: d.pop("hmac"),
        lambda d: d.update(retired=["k1"]),
        lambda d: d.update(retired="k0"),
    ],
)
def test_invalid_documents_are_refused(ring: Keyring, mutate: object) -> None:
    doc = _doc(ring)
    assert callable(mutate)
    mutate(doc)
    with pytest.raises(KeyringError):
        Keyring.from_json(json.dumps(doc))


@pytest.mark.parametrize("text", ["", "null", "[]", "{", '"x"'])
def test_non_object_json_is_refused(text: str) -> None:
    with pytest.raises(KeyringError):
        Keyring.from_json(text)


def test_repr_hides_key_material(ring: Keyring) -> None:
    doc = _doc(ring)
    keys = doc["keys"]
    assert isinstance(keys, dict)
    text = repr(ring)
    assert keys["k1"] not in text
    assert str(doc["hmac"]) not in text
    assert "k1" in text
