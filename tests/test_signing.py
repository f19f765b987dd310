"""Celery tasks are signed by the dispatcher and checked by the workers (engine/queue/signing.py;
torch-free, needs no Celery): what a worker accepts, and all it refuses."""

from __future__ import annotations

from engine.queue.signing import sign, verify

ARGS = ["alice", {"prompt": "a fox", "steps": 2}]


def test_a_signed_task_verifies_and_any_change_does_not():
    mac = sign("secret", "loramint.generate", "t1", ARGS)
    assert verify("secret", "loramint.generate", "t1", ARGS, mac)
    assert not verify("secret", "loramint.generate", "t1", ["bob", ARGS[1]], mac)  # another user
    assert not verify("secret", "loramint.generate", "t2", ARGS, mac)  # replayed as a new task
    assert not verify("secret", "loramint.train", "t1", ARGS, mac)  # another task
    assert not verify("other", "loramint.generate", "t1", ARGS, mac)  # another queue's secret
    for forged in (None, "", "0" * 64, 42):
        assert not verify("secret", "loramint.generate", "t1", ARGS, forged)


def test_the_signature_does_not_depend_on_key_order():
    shuffled = ["alice", {"steps": 2, "prompt": "a fox"}]
    mac = sign("secret", "loramint.generate", "t1", ARGS)
    assert verify("secret", "loramint.generate", "t1", shuffled, mac)
