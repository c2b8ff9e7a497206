"""The keyring as a state machine: whatever sequence of encrypt, rotate, rewrap, retire and
reload happens, every ciphertext ever written opens with its own aad until its key is retired,
and never opens anywhere else."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hubgate.kit.crypto import DecryptionError, Keyring, KeyringError

TABLES = ("instances", "users", "organizations")
FIELDS = ("configuration.password", "configuration.token", "token")


@dataclass
class Written:
    ciphertext: str
    aad: str
    plaintext: str
    key_id: str


def _aad(table: str, row: int, field: str) -> str:
    return f"{table}:{row}:{field}"


class KeyringMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ring = Keyring.generate()
        # Every ciphertext string ever produced, including the pre-rewrap versions.
        self.history: list[Written] = []
        # The value each (row, field) currently holds: what a database would keep.
        self.live: dict[str, Written] = {}
        self.retired: set[str] = set()

    def _record(self, written: Written) -> None:
        self.history.append(written)
        self.live[written.aad] = written

    @rule(
        text=st.text(max_size=40),
        table=st.sampled_from(TABLES),
        row=st.integers(min_value=1, max_value=4),
        field=st.sampled_from(FIELDS),
    )
    def encrypt(self, text: str, table: str, row: int, field: str) -> None:
        aad = _aad(table, row, field)
        ct = self.ring.encrypt(text, aad)
        assert ct.split(".")[1] == self.ring.primary_id
        self._record(Written(ct, aad, text, self.ring.primary_id))

    @rule()
    def rotate(self) -> None:
        before = set(self.ring.key_ids) | self.retired
        new_id = self.ring.rotate()
        assert new_id not in before
        assert self.ring.primary_id == new_id

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def rewrap(self, data: st.DataObject) -> None:
        aad = data.draw(st.sampled_from(sorted(self.live)))
        old = self.live[aad]
        assert self.ring.needs_rewrap(old.ciphertext) == (old.key_id != self.ring.primary_id)
        moved = self.ring.rewrap(old.ciphertext, aad)
        assert moved.split(".")[3:] == old.ciphertext.split(".")[3:]
        self._record(Written(moved, aad, old.plaintext, self.ring.primary_id))

    def _retirable(self) -> list[str]:
        # Only keys that no live value uses any more, as `hubgate keys` would insist.
        in_use = {w.key_id for w in self.live.values()}
        return [k for k in self.ring.key_ids if k != self.ring.primary_id and k not in in_use]

    @precondition(lambda self: bool(self._retirable()))
    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        key_id = data.draw(st.sampled_from(self._retirable()))
        self.ring.retire(key_id)
        self.retired.add(key_id)

    @rule()
    def retire_primary_is_refused(self) -> None:
        with pytest.raises(KeyringError):
            self.ring.retire(self.ring.primary_id)

    @rule()
    def reload(self) -> None:
        self.ring = Keyring.from_json(self.ring.to_json())

    @precondition(lambda self: bool(self.history))
    @rule(data=st.data())
    def tampered_ciphertext_fails_closed(self, data: st.DataObject) -> None:
        # Any changed character in any part (key id, wrapped key, nonce, ciphertext) is a
        # DecryptionError, never a wrong plaintext and never another exception.
        written = data.draw(st.sampled_from(self.history))
        position = data.draw(st.integers(0, len(written.ciphertext) - 1))
        original = written.ciphertext[position]
        # No filter on the draw: the ciphertext is random, and a draw that depends on it
        # would make a replayed example draw differently.
        alphabet = "AQgw_-.0z"
        replacement = alphabet[data.draw(st.integers(0, len(alphabet) - 1))]
        if replacement == original:
            replacement = alphabet[(alphabet.index(replacement) + 1) % len(alphabet)]
        tampered = written.ciphertext[:position] + replacement + written.ciphertext[position + 1 :]
        with pytest.raises(DecryptionError):
            self.ring.decrypt(tampered, written.aad)

    @invariant()
    def everything_written_opens_until_its_key_is_retired(self) -> None:
        for w in self.history:
            if w.key_id in self.retired:
                with pytest.raises(DecryptionError):
                    self.ring.decrypt(w.ciphertext, w.aad)
            else:
                assert self.ring.decrypt(w.ciphertext, w.aad) == w.plaintext

    @invariant()
    def nothing_opens_in_another_row_or_field(self) -> None:
        for w in self.history[-6:]:  # the newest few keep each step cheap
            table, row, field = w.aad.split(":")
            other_row = _aad(table, int(row) + 1, field)
            other_field = _aad(table, int(row), next(f for f in FIELDS if f != field))
            other_table = _aad(next(t for t in TABLES if t != table), int(row), field)
            for moved_to in (other_row, other_field, other_table):
                with pytest.raises(DecryptionError):
                    self.ring.decrypt(w.ciphertext, moved_to)

    @invariant()
    def live_values_never_use_a_retired_key(self) -> None:
        assert not {w.key_id for w in self.live.values()} & self.retired
        assert set(self.ring.retired_ids) == self.retired


KeyringMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=20, deadline=None)
TestKeyring = KeyringMachine.TestCase
