"""The state file: atomic, locked, never overwritten when unreadable, pruned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from intercom_responder.adapters.files import StateFileError, StateLockedError
from intercom_responder.adapters.store import StateStore
from intercom_responder.core.records import ConversationRecord, State


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_missing_file_starts_empty_and_every_change_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    with StateStore(path) as store:
        assert store.cursor is None and len(store) == 0
        store.put(ConversationRecord("42", State.SENDING, customer_part_id="7", action="reply"))
        store.set_cursor(1_700_000_123)
        # on disk at once: another reader sees it (snapshot plus journal)
        reader = StateStore(path, read_only=True)
        assert reader.cursor == 1_700_000_123 and reader.get("42") is not None
    on_disk = json.loads(path.read_text())  # closing folded the journal into the snapshot
    assert on_disk["version"] == 1
    assert on_disk["cursor"] == {"updated_at": 1_700_000_123}
    assert on_disk["conversations"]["42"]["state"] == State.SENDING
    assert on_disk["conversations"]["42"]["customer_part_id"] == "7"
    with StateStore(path) as again:
        record = again.get("42")
        assert record is not None and record.action == "reply"
        assert again.cursor == 1_700_000_123


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    with StateStore(path) as store:
        for i in range(20):
            store.put(ConversationRecord(str(i), State.WAITING))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sessions.json",
        "sessions.json.journal",
        "sessions.json.lock",
    ]
    assert (tmp_path / "sessions.json.journal").read_text() == ""  # folded in at close


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[]", "unexpected shape (the top level is not an object)"),
        ('{"version": 9}', "format version 9"),
        ('{"conversations": {"1": {"state": "DANCING"}}}', "unknown state 'DANCING'"),
        ('{"conversations": {"1": "x"}}', "entry is not an object"),
        ('{"cursor": {"updated_at": "yesterday"}}', "'cursor.updated_at' is not a whole number"),
    ],
)
def test_a_corrupt_file_stops_the_start_and_is_left_unchanged(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "sessions.json"
    path.write_text(content)
    with pytest.raises(StateFileError) as caught:
        StateStore(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
    assert path.read_text() == content
    with pytest.raises(StateFileError) as again:  # the failed start released its lock
        StateStore(path)
    assert not isinstance(again.value, StateLockedError)


def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    with StateStore(path):
        with pytest.raises(StateLockedError) as caught:
            StateStore(path)
        assert "already in use by another intercom-responder" in str(caught.value)
    StateStore(path).close()  # free again after close


def test_a_second_process_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    code = (
        "import sys; from intercom_responder.adapters.store import StateStore\n"
        "from intercom_responder.adapters.files import StateLockedError\n"
        "try:\n    StateStore(sys.argv[1])\nexcept StateLockedError as e:\n"
        "    print(e); sys.exit(7)\n"
    )
    with StateStore(path):
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 7, done.stderr
    assert "pid" in done.stdout


def test_read_only_store_never_writes_nor_locks(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    with StateStore(path) as store:
        store.put(ConversationRecord("1", State.WAITING))
        before = path.read_bytes()
        reader = StateStore(path, read_only=True)  # no lock: works beside the daemon
        reader.put(ConversationRecord("2", State.SENDING))
        reader.set_cursor(5)
        assert reader.get("2") is not None
        assert path.read_bytes() == before


def test_due_returns_in_flight_and_waiting_records_whose_time_has_come(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.json") as store:
        store.put(ConversationRecord("early", State.WAITING, due_at=100.0))
        store.put(ConversationRecord("late", State.WAITING, due_at=300.0))
        store.put(ConversationRecord("sending", State.SENDING))
        store.put(ConversationRecord("done", State.AWAITING_USER_REPLY))
        assert sorted(r.conversation_id for r in store.due(200.0)) == ["early", "sending"]


def test_finished_entries_and_sessions_are_pruned_after_their_expiry(tmp_path: Path) -> None:
    clock = Clock()
    with StateStore(tmp_path / "s.json", clock=clock) as store:
        store.put(ConversationRecord("old-done", State.AWAITING_USER_REPLY))
        store.put(ConversationRecord("old-waiting", State.WAITING, due_at=clock.now + 10))
        store.put(
            ConversationRecord(
                "with-session",
                State.AWAITING_USER_REPLY,
                session_id="sess-1",
                session_expires_at=clock.now + 3600,
            )
        )
        assert store.session("with-session") == "sess-1"
        clock.now += 1800
        store.put(ConversationRecord("new-done", State.AWAITING_USER_REPLY))
        clock.now += 1900  # old entries are 3700 s old, the new one 1900 s
        assert store.session("with-session") is None  # expired sessions are not handed out
        removed = store.prune(ttl_seconds=3600)
        assert removed == 2  # old-done, and with-session's finished record
        assert store.get("old-done") is None
        assert store.get("old-waiting") is not None  # unfinished work is never pruned
        assert store.get("new-done") is not None


def test_the_documented_example_file_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "sessions.json.example"
    text = example.read_text()
    document = json.loads(text)
    (tmp_path / "sessions.json").write_text(json.dumps(document))
    with StateStore(tmp_path / "sessions.json", read_only=True) as store:
        assert store.cursor == document["cursor"]["updated_at"]
        assert store.sweep_cursor == document["cursor"]["sweep_updated_at"]
        assert len(store) == len(document["conversations"])


def test_the_sweep_cursor_survives_a_crash_and_a_clean_stop(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    store = StateStore(path)
    store.set_sweep_cursor(456)
    store._lock_file.close()  # the process dies: the change is only in the journal
    with StateStore(path) as again:
        assert again.sweep_cursor == 456 and again.cursor is None
    document = json.loads(path.read_text())  # folded into the snapshot at the clean stop
    assert document["cursor"] == {"updated_at": None, "sweep_updated_at": 456}


def test_a_crash_leaves_changes_in_the_journal_and_the_next_start_has_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.json"
    store = StateStore(path)
    store.put(ConversationRecord("1", State.SENDING, customer_part_id="9", action="reply"))
    store.set_cursor(123)
    store._lock_file.close()  # the process dies: no close(), no compaction
    assert json.loads(path.read_text())["conversations"] == {}
    with StateStore(path) as again:
        record = again.get("1")
        assert record is not None and record.state == State.SENDING and again.cursor == 123


def test_a_torn_last_journal_line_is_dropped_but_a_corrupt_middle_line_stops_the_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.json"
    with StateStore(path) as store:
        store.put(ConversationRecord("1", State.WAITING))
    journal = tmp_path / "sessions.json.journal"
    good = json.dumps({"put": "2", "record": {"state": "WAITING"}})
    journal.write_text(good + "\n" + '{"put": "3", "rec')  # cut short by a crash
    with StateStore(path) as store:
        assert store.get("2") is not None and store.get("3") is None
    journal.write_text('{"put": "4"\n' + good + "\n")
    with pytest.raises(StateFileError) as caught:
        StateStore(path)
    assert "line 1 of the state journal" in str(caught.value)
    assert journal.read_text().startswith('{"put": "4"')  # left unchanged


def test_a_change_costs_the_same_with_many_conversations(tmp_path: Path) -> None:
    """The journal appends one line; the whole file is not rewritten per change."""
    with StateStore(tmp_path / "sessions.json") as store:
        for i in range(3000):
            store.put(ConversationRecord(str(i), State.AWAITING_USER_REPLY))
        size = (tmp_path / "sessions.json").stat().st_size
        store.put(ConversationRecord("one-more", State.AWAITING_USER_REPLY))
        assert (tmp_path / "sessions.json").stat().st_size == size
        journal = (tmp_path / "sessions.json.journal").read_text().splitlines()
        assert json.loads(journal[-1])["put"] == "one-more"
