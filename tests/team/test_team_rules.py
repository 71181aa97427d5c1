"""The team's rules on a real ledger (a SQLite file and a PostgreSQL database, ``ledger_location``): the policy's thresholds, the sign-in throttle, the event chain."""

from __future__ import annotations

from batch_payouts.payout.ledger import Ledger
from batch_payouts.team import events, users
from batch_payouts.team.policy import Policy


def test_the_policy_asks_one_or_two_approvals_by_thresholds():
    rules = Policy(above={"MXN": 100_000}, rows_over=50, two_above={"MXN": 1_000_000})
    assert rules.needed({"MXN": 100_000}, 10) == 0
    assert rules.needed({"MXN": 100_001}, 10) == 1
    assert rules.needed({"USD": 5_000_000}, 10) == 0  # a threshold in pesos says nothing about dollars
    assert rules.needed({"MXN": 10}, 51) == 1
    assert rules.needed({"MXN": 1_000_001, "USD": 1}, 1) == 2
    assert Policy(every_batch=True).needed({"MXN": 1}, 1) == 1


def test_the_sixth_wrong_password_locks_even_the_right_one_and_the_trail_shows_the_lock(ledger_location):
    throttle = users.Throttle(limit=5, minutes=15)
    with Ledger(ledger_location) as ledger:
        users.add_user(ledger, "ana", "ana password 1", "preparer", actor=None)
        for _ in range(5):
            assert users.sign_in(ledger, "ana", "wrong", "10.0.0.9", throttle).user is None
        sixth = users.sign_in(ledger, "ana", "ana password 1", "10.0.0.8", throttle)
        assert sixth.user is None and sixth.locked
        locks = events.events(ledger, action="signin_locked")
        assert [e.detail["scope"] for e in locks] == ["ip:10.0.0.9", "user:ana"]
        assert events.events(ledger, action="signin_refused_locked")
        # another user from the locked address is refused too; from elsewhere, after the window, allowed
        users.add_user(ledger, "beto", "beto password 1", "preparer", actor=None)
        assert users.sign_in(ledger, "beto", "beto password 1", "10.0.0.9", throttle).locked
        assert users.sign_in(ledger, "beto", "beto password 1", "10.0.0.7", throttle).user.name == "beto"
        assert users.sign_in(ledger, "ana", "ana password 1", "10.0.0.7", users.Throttle(5, 0)).user.name == "ana"


def test_an_edited_event_breaks_the_chain(ledger_location):
    with Ledger(ledger_location) as ledger:
        for n in range(3):
            events.record(ledger, "ana", "127.0.0.1", "signin", n=n)
        assert events.verify(ledger) is None
        ledger._query("UPDATE team_events SET actor='mallory' WHERE seq=2")
        assert events.verify(ledger) == 2


def test_config_users_are_copied_once_as_preparer_and_approver(ledger_location):
    from batch_payouts.team.passwords import hash_password

    with Ledger(ledger_location) as ledger:
        stored = hash_password("config password")
        assert users.bootstrap(ledger, {"ana": stored}) == ["ana"]
        users.set_roles(ledger, "ana", "auditor", actor="root")
        assert users.bootstrap(ledger, {"ana": stored}) == []  # the ledger's roles win from then on
        assert users.get_user(ledger, "ana").roles == ("auditor",)
        assert users.sign_in(ledger, "ana", "config password", None, users.Throttle()).user.name == "ana"


def test_batch_owners_are_kept_per_user(ledger_location):
    from batch_payouts.team import owners

    with Ledger(ledger_location) as ledger:
        owners.claim(ledger, "a" * 64, "beto")
        owners.claim(ledger, "a" * 64, "beto")  # a second review of the same file: still one owner row
        owners.claim(ledger, "a" * 64, "dani")
        owners.claim(ledger, "b" * 64, "dani")
        assert owners.owned_by(ledger, "beto") == {"a" * 64}
        assert owners.owned_by(ledger, "dani") == {"a" * 64, "b" * 64}
        assert owners.owns(ledger, "b" * 64, "dani") and not owners.owns(ledger, "b" * 64, "beto")
        assert not owners.owns(ledger, "a" * 64, None) and owners.owned_by(ledger, None) == set()


def test_the_timing_equaliser_is_a_real_hash_at_the_current_cost():
    """Written out to spare every command one scrypt at import; it must still be what it says."""
    from batch_payouts.team.passwords import TIMING_EQUALISER, hash_password, verify_password

    assert TIMING_EQUALISER == hash_password("timing-equaliser", salt=b"\0" * 16)
    assert verify_password("timing-equaliser", TIMING_EQUALISER)
