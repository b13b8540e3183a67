"""The answer memory against real Mem0: local on a temporary directory, platform on a fake.

Local Mem0 runs for real (embedded Qdrant, SQLite history) and embeds through the fake
OpenAI-compatible server, whose hashed bag-of-words vectors make texts sharing words
similar; the platform tests talk to a fake Mem0 platform over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercom_responder.adapters.memory import (
    CATALOGUE_USER_ID,
    AnswerMemoryError,
    LocalMemory,
    MemoryEntry,
    PlatformMemory,
    open_memory,
)
from tests.fakes.mem0_platform import FakeMem0Platform
from tests.fakes.openai_server import FakeOpenAI, embed_text

REPO = Path(__file__).resolve().parent.parent
DIMS = 64
OPENAI_KEY = "sk-memory-test-secret-0123456789"
MEM0_KEY = "m0-memory-test-secret-0123456789"
FAST_RETRY = {"retry-after-ms": "1"}

RESET_Q = "How do I reset my password?"
RESET_A = "Open Settings > Security and choose Reset password."
HOURS_Q = "What are your opening hours on weekends?"
HOURS_A = "Saturday 10:00-14:00, closed on Sunday."
INVOICE_Q = "Where can I download my invoice as a PDF?"
INVOICE_A = "Billing > Invoices, then the PDF button next to each invoice."


def cosine(a: str, b: str) -> float:
    """What local Mem0 should report: the cosine of the fake's embeddings."""
    return sum(x * y for x, y in zip(embed_text(a, DIMS), embed_text(b, DIMS), strict=True))


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI_KEY, embedding_dim=DIMS) as fake:
        yield fake


@pytest.fixture
def open_local(model: FakeOpenAI, tmp_path: Path) -> Iterator[Callable[..., LocalMemory]]:
    opened: list[LocalMemory] = []

    def make(**overrides: object) -> LocalMemory:
        options: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "openai_api_key": OPENAI_KEY,
            "openai_base_url": model.base_url,
            "embedding_dims": DIMS,
            "timeout": 5.0,
        }
        options.update(overrides)
        memory = LocalMemory(**options)  # type: ignore[arg-type]
        opened.append(memory)
        return memory

    yield make
    for memory in opened:
        memory.close()


@pytest.fixture
def local(open_local: Callable[..., LocalMemory]) -> LocalMemory:
    return open_local()


def seed(memory: LocalMemory) -> None:
    assert memory.add(RESET_Q, RESET_A, source="approved", conversation_id="101")
    assert memory.add(HOURS_Q, HOURS_A, source="edited", conversation_id="102")
    assert memory.add(INVOICE_Q, INVOICE_A, source="manual")


# --------------------------------------------------------------------------- local


def test_paraphrased_question_finds_its_answer_first_with_cosine_score(
    local: LocalMemory, model: FakeOpenAI
) -> None:
    seed(local)
    asked = "how can I reset the password for my account"

    hits = local.search(asked, limit=3, min_score=0.0)

    assert hits[0].answer == RESET_A
    best = hits[0]
    assert (best.question, best.source, best.conversation_id) == (RESET_Q, "approved", "101")
    # Higher is better and it is the plain cosine similarity, not a blend.
    assert best.score == pytest.approx(cosine(asked, RESET_Q), abs=1e-4)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert model.embedding_requests[-1]["dimensions"] == DIMS
    assert model.chat_requests == []  # infer=False: the LLM block is never called


def test_min_score_filters_and_limit_caps(local: LocalMemory) -> None:
    seed(local)
    asked = "reset password"
    scores = {q: cosine(asked, q) for q in (RESET_Q, HOURS_Q, INVOICE_Q)}
    assert scores[RESET_Q] > 0.3 > max(scores[HOURS_Q], scores[INVOICE_Q])

    assert [hit.question for hit in local.search(asked, limit=5, min_score=0.3)] == [RESET_Q]
    assert local.search(asked, limit=5, min_score=0.99) == []
    assert len(local.search(asked, limit=2, min_score=-1.0)) == 2
    assert local.search(asked, limit=0, min_score=0.0) == []
    assert local.search("   ", limit=3, min_score=0.0) == []


def test_same_pair_is_stored_once_but_a_new_answer_is_stored(local: LocalMemory) -> None:
    assert local.add(RESET_Q, RESET_A, source="approved", conversation_id="1") is True
    assert local.add(RESET_Q, RESET_A, source="sync", conversation_id="2") is False
    # Whitespace and case do not make a new pair.
    assert local.add(f"  {RESET_Q.upper()}\n", f"{RESET_A.lower()}  ", source="sync") is False
    assert local.add(RESET_Q, "Ask us by email and we reset it.", source="edited") is True

    answers = sorted(entry.answer for entry in local.entries())
    assert answers == sorted([RESET_A, "Ask us by email and we reset it."])


def test_entries_list_source_and_conversation(local: LocalMemory) -> None:
    seed(local)

    entries = local.entries()

    by_question = {entry.question: entry for entry in entries}
    assert set(by_question) == {RESET_Q, HOURS_Q, INVOICE_Q}
    reset = by_question[RESET_Q]
    assert isinstance(reset, MemoryEntry)
    assert (reset.answer, reset.source, reset.conversation_id) == (RESET_A, "approved", "101")
    assert by_question[INVOICE_Q].conversation_id is None
    assert by_question[HOURS_Q].source == "edited"
    for entry in entries:
        assert entry.created_at.endswith("+00:00")
    assert [e.created_at for e in entries] == sorted((e.created_at for e in entries), reverse=True)
    assert len(local.entries(limit=2)) == 2
    assert local.entries(limit=0) == []


def test_catalogue_survives_close_and_reopen(open_local: Callable[..., LocalMemory]) -> None:
    first = open_local()
    seed(first)
    first.close()
    with pytest.raises(AnswerMemoryError, match="after close"):
        first.search(RESET_Q, limit=1, min_score=0.0)

    again = open_local()

    assert {entry.question for entry in again.entries()} == {RESET_Q, HOURS_Q, INVOICE_Q}
    assert again.search(RESET_Q, limit=1, min_score=0.5)[0].answer == RESET_A
    assert again.add(RESET_Q, RESET_A, source="sync") is False  # dedup sees old entries


def test_second_local_memory_on_the_same_dir_says_it_is_in_use(
    open_local: Callable[..., LocalMemory],
) -> None:
    first = open_local()

    with pytest.raises(AnswerMemoryError) as caught:
        open_local()

    message = str(caught.value)
    assert "in use by another process" in message
    assert "the daemon and `sync` cannot share it" in message
    assert first.search(RESET_Q, limit=1, min_score=0.0) == []  # the first one still works


def test_dimension_change_is_refused_at_open(open_local: Callable[..., LocalMemory]) -> None:
    open_local().close()

    with pytest.raises(AnswerMemoryError, match="64-dimensional vectors but EMBEDDING_DIMS is 32"):
        open_local(embedding_dims=32)


def test_model_server_errors_fail_fast_and_memory_recovers(
    local: LocalMemory, model: FakeOpenAI
) -> None:
    seed(local)
    model.fail_next(500, times=2, headers=FAST_RETRY)  # the attempt and its one retry

    started = time.monotonic()
    with pytest.raises(AnswerMemoryError) as caught:
        local.search(RESET_Q, limit=1, min_score=0.0)

    assert time.monotonic() - started < 2.0
    assert "local memory" in str(caught.value) and "search failed" in str(caught.value)
    assert OPENAI_KEY not in str(caught.value)
    assert local.search(RESET_Q, limit=1, min_score=0.0)[0].answer == RESET_A


def test_model_server_down_fails_fast(local: LocalMemory, model: FakeOpenAI) -> None:
    model.stop()

    started = time.monotonic()
    with pytest.raises(AnswerMemoryError, match="Connection"):
        local.add(RESET_Q, RESET_A, source="approved")

    assert time.monotonic() - started < 3.0


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def test_silent_model_server_is_bounded_by_the_timeout(
    open_local: Callable[..., LocalMemory], silent_server: str
) -> None:
    memory = open_local(openai_base_url=silent_server, timeout=1.0)

    started = time.monotonic()
    with pytest.raises(AnswerMemoryError, match="search failed: APITimeoutError"):
        memory.search(RESET_Q, limit=1, min_score=0.0)

    # Two attempts of timeout/2 each plus the SDK's back-off (< 0.5 s).
    assert time.monotonic() - started < 2.5


def test_wrong_model_key_error_names_the_backend_not_the_key(
    open_local: Callable[..., LocalMemory],
) -> None:
    wrong = "sk-wrong-secret-abcdefghijklmnop"
    memory = open_local(openai_api_key=wrong)

    with pytest.raises(AnswerMemoryError) as caught:
        memory.add(RESET_Q, RESET_A, source="approved")

    assert "AuthenticationError" in str(caught.value)
    assert wrong not in str(caught.value)


def test_bad_input_is_a_value_error(local: LocalMemory) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        local.add(RESET_Q, RESET_A, source="guessed")
    with pytest.raises(ValueError, match="empty"):
        local.add(" ", RESET_A, source="manual")
    with pytest.raises(ValueError, match="may not set answer, user_id"):
        local.add(RESET_Q, RESET_A, source="manual", extra={"user_id": "x", "answer": "y"})
    assert local.add(RESET_Q, RESET_A, source="manual", extra={"slack_user": "U1"}) is True


def test_concurrent_calls_are_serialised(local: LocalMemory) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(4):
                local.add(f"question {n} number {i}", f"answer {n}.{i}", source="sync")
                local.search(f"question {n}", limit=2, min_score=0.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(local.entries()) == 16


def test_open_memory_without_mem0_key_is_local(model: FakeOpenAI, tmp_path: Path) -> None:
    memory = open_memory(
        mem0_api_key=None,
        mem0_host=None,
        data_dir=tmp_path / "data",
        openai_api_key=OPENAI_KEY,
        openai_base_url=model.base_url,
        embedding_model="text-embedding-3-small",
        embedding_dims=DIMS,
        llm_model="gpt-4o",
        timeout=5.0,
    )
    try:
        assert memory.backend == "local"
        assert memory.add(RESET_Q, RESET_A, source="manual") is True
    finally:
        memory.close()


_CHILD = """
import json, os, sys
from pathlib import Path
import intercom_responder.adapters.memory as m
lazy = "mem0" not in sys.modules
memory = m.open_memory(
    mem0_api_key=None, mem0_host=None, data_dir=Path(sys.argv[1]),
    openai_api_key=sys.argv[3], openai_base_url=sys.argv[2],
    embedding_model="text-embedding-3-small", embedding_dims=64, llm_model="gpt-4o",
    timeout=5.0,
)
memory.add("How do I reset my password?", "Settings.", source="manual")
hits = memory.search("reset my password", limit=1, min_score=0.0)
memory.close()
sys.stderr.write(json.dumps({
    "lazy": lazy, "hits": len(hits),
    "telemetry": os.environ.get("MEM0_TELEMETRY"), "mem0_dir": os.environ.get("MEM0_DIR"),
}))
"""


def test_fresh_process_imports_lazily_stays_quiet_and_keeps_mem0_files_in_data_dir(
    model: FakeOpenAI, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data_dir), model.base_url, OPENAI_KEY],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(REPO),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # no notice, no download chatter on stdout
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {
        "lazy": True,
        "hits": 1,
        "telemetry": "False",
        "mem0_dir": str(data_dir / "mem0"),
    }
    assert (data_dir / "mem0" / "config.json").exists()
    assert not (home / ".mem0").exists()


# --------------------------------------------------------------------------- platform


@pytest.fixture
def platform() -> Iterator[FakeMem0Platform]:
    with FakeMem0Platform(api_key=MEM0_KEY, embedding_dim=DIMS) as fake:
        yield fake


@pytest.fixture
def open_platform(platform: FakeMem0Platform) -> Iterator[Callable[..., PlatformMemory]]:
    opened: list[PlatformMemory] = []

    def make(**overrides: object) -> PlatformMemory:
        options: dict[str, object] = {
            "api_key": MEM0_KEY,
            "host": platform.base_url,
            "timeout": 5.0,
        }
        options.update(overrides)
        memory = PlatformMemory(**options)  # type: ignore[arg-type]
        opened.append(memory)
        return memory

    yield make
    for memory in opened:
        memory.close()


def test_platform_add_search_dedup_and_entries(
    open_platform: Callable[..., PlatformMemory], platform: FakeMem0Platform
) -> None:
    memory = open_platform()
    assert memory.backend == "platform"
    assert memory.add(
        RESET_Q, RESET_A, source="approved", conversation_id="101", extra={"slack_user": "U1"}
    )
    assert memory.add(HOURS_Q, HOURS_A, source="edited", conversation_id="102")
    assert memory.add(INVOICE_Q, INVOICE_A, source="manual")
    assert memory.add(RESET_Q, RESET_A, source="sync") is False
    assert memory.add(RESET_Q, "Ask us by email and we reset it.", source="edited") is True
    # A fresh client (another process, say) finds the pair through the platform.
    assert open_platform().add(f" {RESET_Q.lower()} ", RESET_A, source="sync") is False

    asked = "how can I reset the password for my account"
    hits = memory.search(asked, limit=5, min_score=0.3)

    assert {hit.answer for hit in hits[:2]} == {RESET_A, "Ask us by email and we reset it."}
    assert all(hit.question == RESET_Q for hit in hits)  # the others score below 0.3
    assert hits[0].score == pytest.approx(cosine(asked, RESET_Q), abs=1e-6)
    assert len(memory.search(asked, limit=1, min_score=0.0)) == 1
    assert memory.search(asked, limit=5, min_score=0.99) == []

    entries = memory.entries()
    assert len(entries) == 4
    reset = next(e for e in entries if e.answer == RESET_A)
    assert (reset.question, reset.source, reset.conversation_id) == (RESET_Q, "approved", "101")

    stored = next(m for m in platform.memories if m["metadata"]["answer"] == RESET_A)
    assert stored["user_id"] == CATALOGUE_USER_ID
    assert stored["memory"] == RESET_Q
    assert stored["metadata"]["slack_user"] == "U1"
    assert set(stored["metadata"]) >= {"answer", "source", "added_at", "pair_hash"}
    assert platform.errors == []  # every request had a shape the platform accepts
    add_bodies = [r.json for r in platform.requests if r.path == "/v3/memories/add/"]
    assert add_bodies and all(body["infer"] is False for body in add_bodies)


def test_platform_ignores_foreign_memories_and_pages_through_entries(
    open_platform: Callable[..., PlatformMemory], platform: FakeMem0Platform
) -> None:
    platform.seed_memory(RESET_Q, user_id="someone-else", metadata={"answer": "Not ours."})
    platform.seed_memory("The customer likes dark mode", user_id=CATALOGUE_USER_ID)
    for n in range(130):
        platform.seed_memory(
            f"question number {n}",
            user_id=CATALOGUE_USER_ID,
            metadata={"answer": f"answer {n}", "source": "sync"},
        )
    memory = open_platform()

    assert len(memory.entries()) == 130
    assert len(memory.entries(limit=120)) == 120
    pages = [r.query.get("page") for r in platform.requests if r.path == "/v3/memories/"]
    assert "2" in pages
    assert all(hit.answer != "Not ours." for hit in memory.search(RESET_Q, limit=5, min_score=0))
    assert platform.errors == []


def test_platform_server_error_is_an_answer_memory_error(
    open_platform: Callable[..., PlatformMemory], platform: FakeMem0Platform
) -> None:
    memory = open_platform()
    platform.fail_next(500)

    with pytest.raises(AnswerMemoryError) as caught:
        memory.search(RESET_Q, limit=3, min_score=0.0)

    message = str(caught.value)
    assert "Mem0 platform at http://127.0.0.1" in message and "search failed" in message
    assert MEM0_KEY not in message
    platform.fail_next(503)
    with pytest.raises(AnswerMemoryError, match="duplicate lookup failed"):
        memory.add(RESET_Q, RESET_A, source="manual")
    assert memory.add(RESET_Q, RESET_A, source="manual") is True  # nothing half-done


def test_platform_wrong_key_fails_at_open_without_the_key(
    open_platform: Callable[..., PlatformMemory],
) -> None:
    wrong = "m0-wrong-secret-abcdefghijklmnop"
    with pytest.raises(AnswerMemoryError, match="connect failed: ValueError: Error: Invalid") as e:
        open_platform(api_key=wrong)
    assert wrong not in str(e.value)


def test_platform_slow_server_times_out(
    open_platform: Callable[..., PlatformMemory], platform: FakeMem0Platform
) -> None:
    memory = open_platform(timeout=0.5)
    platform.delay = 2.0

    started = time.monotonic()
    with pytest.raises(AnswerMemoryError, match="search failed: NetworkError"):
        memory.search(RESET_Q, limit=3, min_score=0.0)
    assert time.monotonic() - started < 1.5

    started = time.monotonic()
    with pytest.raises(AnswerMemoryError, match="connect failed"):
        open_platform(timeout=0.5)  # the constructor's ping is bounded too
    assert time.monotonic() - started < 1.5


def test_open_memory_with_mem0_key_is_the_platform(
    platform: FakeMem0Platform, tmp_path: Path
) -> None:
    memory = open_memory(
        mem0_api_key=MEM0_KEY,
        mem0_host=platform.base_url,
        data_dir=tmp_path / "data",
        openai_api_key="",
        openai_base_url=None,
        embedding_model="text-embedding-3-small",
        embedding_dims=DIMS,
        llm_model="gpt-4o",
        timeout=5.0,
    )
    try:
        assert memory.backend == "platform"
        assert memory.add(RESET_Q, RESET_A, source="manual") is True
        assert memory.search(RESET_Q, limit=1, min_score=0.9)[0].answer == RESET_A
    finally:
        memory.close()
