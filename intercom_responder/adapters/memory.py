"""Mem0 as a catalogue of human-verified answers: search before drafting, add after review.

Each entry is one customer question (the memory text, so that is what gets embedded
and searched) with its answer and provenance in metadata. Entries are stored verbatim
(`infer=False`): no LLM rewrites a verified answer, and nothing is extracted or merged.

Two backends behind one protocol: the Mem0 platform (`MemoryClient`) when
`MEM0_API_KEY` is set, else local Mem0 (`Memory.from_config`) with embedded Qdrant
under `DATA_DIR` and embeddings from the OpenAI-compatible server the responder uses.

`mem0` is imported on first use only: it pulls in qdrant-client and friends (about
1.5 s), and `python main.py --help` must stay fast. Before that import the environment
is set so that mem0 neither phones home nor prints notices (`_prepare_environment`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = [
    "CATALOGUE_USER_ID",
    "KNOWLEDGE_USER_ID",
    "AnswerMemory",
    "AnswerMemoryError",
    "KnowledgeHit",
    "LocalMemory",
    "MemoryEntry",
    "MemoryHit",
    "MemoryInUseError",
    "PlatformMemory",
    "open_memory",
]

from ..core.text import Redactor, describe
from ..defaults import (
    EMBEDDING_DIMS,
    EMBEDDING_MODEL,
    EMBEDDING_RETRIES,
    MAX_PIECES,
    MEMORY_PAGE_SIZE,
    MEMORY_TIMEOUT,
    OPENAI_MODEL,
)
from ..errors import Dependency, IntercomResponderError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The Mem0 entity id that scopes the catalogue; every call filters on it.
CATALOGUE_USER_ID = "intercom-responder"

#: The entity id of the knowledge pieces (help-center articles, the team's documents):
#: beside the verified answers in the same memory, searched on their own.
KNOWLEDGE_USER_ID = "intercom-responder-knowledge"

#: Qdrant collection of the local catalogue.
COLLECTION_NAME = "verified_answers"


_SOURCES = frozenset({"approved", "edited", "sync", "manual", "playground"})
_RESERVED_METADATA = frozenset(
    {"answer", "source", "conversation_id", "added_at", "pair_hash"}
    # Mem0 drops identity keys from metadata (with a warning): refuse them up front.
    | {"user_id", "agent_id", "run_id", "app_id", "actor_id", "role"}
)
_QDRANT_LOCKED = "already accessed by another instance"


class AnswerMemoryError(IntercomResponderError):
    """A memory backend failed; the message names the backend and the step, never a key."""

    dependency = Dependency.MEM0


class MemoryInUseError(AnswerMemoryError):
    """Embedded Qdrant is held by another process (the daemon, or `sync`)."""


@dataclass(frozen=True)
class MemoryHit:
    id: str
    question: str
    answer: str
    score: float  # higher is better; local: cosine similarity of the questions
    source: str
    conversation_id: str | None


@dataclass(frozen=True)
class MemoryEntry:
    id: str
    question: str
    answer: str
    source: str
    conversation_id: str | None
    created_at: str  # ISO 8601


@dataclass(frozen=True)
class KnowledgeHit:
    """A piece of an article or document found for a draft, with where it comes from."""

    id: str
    text: str
    score: float
    source: str  # "article" or "document"
    doc_id: str  # the article id, or the document's path relative to the folder
    title: str
    url: str | None
    heading: str  # the heading path, "Billing > Refunds"


@dataclass(frozen=True)
class StoredPiece:
    """A knowledge piece as the sync sees it: its id and its metadata."""

    id: str
    text: str
    metadata: dict[str, str]


class AnswerMemory(Protocol):
    backend: str  # "local" or "platform"

    def search(self, question: str, *, limit: int, min_score: float) -> list[MemoryHit]: ...

    def add(
        self,
        question: str,
        answer: str,
        *,
        source: str,
        conversation_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> bool: ...

    def entries(self, *, limit: int = 1000) -> list[MemoryEntry]: ...

    def search_pieces(self, query: str, *, limit: int, min_score: float) -> list[KnowledgeHit]: ...

    def pieces(self, source: str) -> list[StoredPiece]: ...

    def add_piece(self, text: str, metadata: dict[str, str]) -> None: ...

    def delete(self, memory_id: str) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- local


class LocalMemory:
    """Local Mem0: embedded Qdrant in `data_dir/qdrant`, history in `data_dir/mem0`.

    Embedded Qdrant locks its directory, so one process at a time: the daemon and
    `python main.py sync` cannot run against the same `DATA_DIR` together. Neither
    Qdrant's local client nor Mem0's SQLite history is thread-safe, so every call
    holds one lock.

    Mem0 builds its embedder's OpenAI client with a 600 s read timeout and two
    retries; it is replaced by a copy whose attempts get `timeout / 2` each with one
    retry, so a dead model server costs about `timeout` per call, not ten minutes.
    The LLM block is required by Mem0's config but never called (`infer=False`).
    """

    backend: str = "local"

    def __init__(
        self,
        *,
        data_dir: Path,
        openai_api_key: str,
        openai_base_url: str | None,
        embedding_model: str = EMBEDDING_MODEL,
        embedding_dims: int = EMBEDDING_DIMS,
        llm_model: str = OPENAI_MODEL,
        timeout: float = MEMORY_TIMEOUT,
    ) -> None:
        self._secrets = [openai_api_key]
        self._lock = threading.Lock()
        self._closed = False
        data_dir = Path(data_dir)
        qdrant_dir = data_dir / "qdrant"
        mem0_dir = data_dir / "mem0"
        self._where = f"local memory in {qdrant_dir}"
        try:
            qdrant_dir.mkdir(parents=True, exist_ok=True)
            mem0_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AnswerMemoryError(f"{self._where}: cannot create the directory: {exc}") from exc

        _prepare_environment(data_dir)
        mem0 = _load_mem0(self._where)
        llm_config: dict[str, Any] = {"model": llm_model, "api_key": openai_api_key}
        embedder_config: dict[str, Any] = {
            "model": embedding_model,
            "api_key": openai_api_key,
            "embedding_dims": embedding_dims,
        }
        if openai_base_url:
            llm_config["openai_base_url"] = openai_base_url
            embedder_config["openai_base_url"] = openai_base_url
        config = {
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "collection_name": COLLECTION_NAME,
                    "embedding_model_dims": embedding_dims,
                    "path": str(qdrant_dir),
                },
            },
            "embedder": {"provider": "openai", "config": embedder_config},
            "llm": {"provider": "openai", "config": llm_config},
            "history_db_path": str(mem0_dir / "history.db"),
        }
        try:
            memory: Any = mem0.Memory.from_config(config)
        except RuntimeError as exc:
            if _QDRANT_LOCKED in str(exc):
                raise MemoryInUseError(
                    f"{self._where} is in use by another process: embedded Qdrant allows "
                    "one process per directory, so the daemon and `sync` cannot share it "
                    "at the same time; stop the other one (or use the Mem0 platform)"
                ) from exc
            raise self._error("open", exc) from exc
        except Exception as exc:
            raise self._error("open", exc) from exc
        self._memory = memory
        try:
            self._check_dimensions(embedding_dims)
            self._tune(memory, timeout)
        except Exception:
            self._release()
            raise
        log.info("answer memory: %s, embeddings %s", self._where, openai_base_url or "OpenAI")

    def search(self, question: str, *, limit: int, min_score: float) -> list[MemoryHit]:
        items = self._search(CATALOGUE_USER_ID, question, limit, min_score, "search")
        return _rank(_hits(items, self._where), limit, min_score)

    def _search(
        self, user_id: str, query: str, limit: int, min_score: float, what: str
    ) -> list[dict[str, Any]]:
        """One entity's search results (verified answers, or knowledge pieces)."""
        query = query.strip()
        if limit <= 0 or not query:
            return []
        raw = self._call(
            what,
            lambda memory: memory.search(
                query,
                filters={"user_id": user_id},
                top_k=limit,
                threshold=_clamp_unit(min_score),
                explain=True,  # score_details carry the pure cosine; see _score
            ),
        )
        return _results(raw, self._where, what)

    def add(
        self,
        question: str,
        answer: str,
        *,
        source: str,
        conversation_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> bool:
        text, metadata = _new_entry(question, answer, source, conversation_id, extra)
        pair_hash = metadata["pair_hash"]
        filters = {"user_id": CATALOGUE_USER_ID, "pair_hash": pair_hash}  # local: flat

        def add_once(memory: Any) -> bool:
            found = memory.get_all(filters=filters, top_k=1)
            if _has_pair(_results(found, self._where, "duplicate lookup"), pair_hash):
                return False
            memory.add(
                [{"role": "user", "content": text}],
                user_id=CATALOGUE_USER_ID,
                metadata=metadata,
                infer=False,
            )
            return True

        added = self._call("add", add_once)
        log.debug("answer memory (local): %s pair %s", "added" if added else "known", pair_hash)
        return added

    def entries(self, *, limit: int = 1000) -> list[MemoryEntry]:
        if limit <= 0:
            return []
        raw = self._call(
            "list",
            lambda memory: memory.get_all(filters={"user_id": CATALOGUE_USER_ID}, top_k=limit),
        )
        return _entries(_results(raw, self._where, "list"), self._where)[:limit]

    def search_pieces(self, query: str, *, limit: int, min_score: float) -> list[KnowledgeHit]:
        items = self._search(KNOWLEDGE_USER_ID, query, limit, min_score, "knowledge search")
        return _knowledge_hits(items, limit, min_score)

    def pieces(self, source: str) -> list[StoredPiece]:
        raw = self._call(
            "knowledge list",
            lambda memory: memory.get_all(
                filters={"user_id": KNOWLEDGE_USER_ID, "source": source}, top_k=MAX_PIECES
            ),
        )
        return _stored_pieces(_results(raw, self._where, "knowledge list"), source)

    def add_piece(self, text: str, metadata: dict[str, str]) -> None:
        self._call(
            "knowledge add",
            lambda memory: memory.add(
                [{"role": "user", "content": text}],
                user_id=KNOWLEDGE_USER_ID,
                metadata=dict(metadata),
                infer=False,
            ),
        )

    def delete(self, memory_id: str) -> None:
        self._call("delete", lambda memory: memory.delete(memory_id))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._release()

    # -- internals ---------------------------------------------------------------------

    def _call(self, what: str, operation: Callable[[Any], T]) -> T:
        with self._lock:
            if self._closed:
                raise AnswerMemoryError(f"{self._where}: {what} after close()")
            try:
                return operation(self._memory)
            except AnswerMemoryError:
                raise
            except Exception as exc:
                raise self._error(what, exc) from exc

    def _error(self, what: str, exc: BaseException) -> AnswerMemoryError:
        return AnswerMemoryError(f"{self._where}: {what} failed: {_describe(exc, self._secrets)}")

    def _check_dimensions(self, embedding_dims: int) -> None:
        """An existing collection built for other dimensions fails every insert later."""
        try:
            info = self._memory.vector_store.client.get_collection(COLLECTION_NAME)
            size = info.config.params.vectors.size
        except Exception as exc:  # unknown layout: leave it to the first call
            log.debug("could not read the collection's vector size: %s", exc)
            return
        if isinstance(size, int) and size != embedding_dims:
            raise AnswerMemoryError(
                f"{self._where} holds {size}-dimensional vectors but EMBEDDING_DIMS is "
                f"{embedding_dims}: set it back, or move the directory away to start anew"
            )

    @staticmethod
    def _tune(memory: Any, timeout: float) -> None:
        """Bound the model calls and keep Mem0 from fetching NLP models at run time.

        Mem0 downloads a spaCy model through pip (printing to stdout) and a BM25 model
        from Hugging Face when those optional packages are installed, and mixes their
        scores into the similarity; the catalogue wants plain cosine similarity and
        no downloads, so both are switched off where Mem0 keeps the switch.
        """
        per_attempt = max(timeout / (EMBEDDING_RETRIES + 1), 0.05)
        for owner in (memory.embedding_model, memory.llm):
            client = getattr(owner, "client", None)
            if client is not None and hasattr(client, "with_options"):
                owner.client = client.with_options(
                    timeout=per_attempt, max_retries=EMBEDDING_RETRIES
                )
        if hasattr(memory.vector_store, "_bm25_encoder"):
            memory.vector_store._bm25_encoder = False  # Mem0's "tried and unavailable"
        try:
            spacy_models = importlib.import_module("mem0.utils.spacy_models")
        except ImportError:
            return
        for flag in ("_load_failed_full", "_load_failed_lemma"):
            if hasattr(spacy_models, flag):
                setattr(spacy_models, flag, True)

    def _release(self) -> None:
        """Memory.close() only closes SQLite; the Qdrant lock and HTTP pools are ours."""
        memory = self._memory
        steps: list[tuple[str, Callable[[], object]]] = [
            ("history", memory.close),
            ("qdrant", lambda: memory.vector_store.client.close()),
            ("embedder", lambda: memory.embedding_model.client.close()),
            ("llm", lambda: memory.llm.client.close()),
        ]
        for name, step in steps:
            try:
                step()
            except Exception as exc:
                log.debug("closing the local memory's %s failed: %s", name, exc)


# --------------------------------------------------------------------------- platform


class PlatformMemory:
    """The Mem0 platform through `MemoryClient`, with our own bounded `httpx.Client`.

    `MemoryClient` pings the server inside its constructor, so opening can fail like
    any call. The platform adds memories asynchronously: a pair added a moment ago
    may not be searchable yet, so pairs added by this instance are remembered to keep
    a quick second `add` from storing a duplicate. Construct through `open_memory` to
    keep Mem0's config file under `DATA_DIR` rather than `~/.mem0`.
    """

    backend: str = "platform"

    def __init__(
        self, *, api_key: str, host: str | None = None, timeout: float = MEMORY_TIMEOUT
    ) -> None:
        self._secrets = [api_key]
        self._where = f"Mem0 platform at {host or 'the default host'}"
        self._lock = threading.Lock()  # check-then-add must not interleave
        self._added: set[str] = set()
        self._closed = False
        mem0 = _load_mem0(self._where)
        import httpx

        self._http: httpx.Client = httpx.Client(timeout=httpx.Timeout(timeout))
        try:
            self._client: Any = mem0.MemoryClient(api_key=api_key, host=host, client=self._http)
        except Exception as exc:
            self._http.close()
            raise self._error("connect", exc) from exc
        log.info("answer memory: %s", self._where)

    def search(self, question: str, *, limit: int, min_score: float) -> list[MemoryHit]:
        items = self._search(CATALOGUE_USER_ID, question, limit, min_score, "search")
        return _rank(_hits(items, self._where), limit, min_score)

    def _search(
        self, user_id: str, query: str, limit: int, min_score: float, what: str
    ) -> list[dict[str, Any]]:
        """One entity's search results (verified answers, or knowledge pieces)."""
        query = query.strip()
        if limit <= 0 or not query:
            return []
        raw = self._call(
            what,
            lambda: self._client.search(
                query,
                filters={"AND": [{"user_id": user_id}]},
                top_k=limit,
                threshold=_clamp_unit(min_score),
            ),
        )
        return _results(raw, self._where, what)

    def add(
        self,
        question: str,
        answer: str,
        *,
        source: str,
        conversation_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> bool:
        text, metadata = _new_entry(question, answer, source, conversation_id, extra)
        pair_hash = metadata["pair_hash"]
        # Platform filters: entity ids and metadata inside `filters`, metadata nested.
        filters = {"AND": [{"user_id": CATALOGUE_USER_ID}, {"metadata": {"pair_hash": pair_hash}}]}
        with self._lock:
            if pair_hash in self._added:
                return False
            found = self._call(
                "duplicate lookup",
                lambda: self._client.get_all(filters=filters, page=1, page_size=10),
            )
            if _has_pair(_results(found, self._where, "duplicate lookup"), pair_hash):
                self._added.add(pair_hash)
                return False
            self._call(
                "add",
                lambda: self._client.add(
                    [{"role": "user", "content": text}],
                    user_id=CATALOGUE_USER_ID,
                    metadata=metadata,
                    infer=False,
                ),
            )
            self._added.add(pair_hash)
        log.debug("answer memory (platform): added pair %s", pair_hash)
        return True

    def entries(self, *, limit: int = 1000) -> list[MemoryEntry]:
        if limit <= 0:
            return []
        page_size = min(limit, MEMORY_PAGE_SIZE)
        collected: list[dict[str, Any]] = []
        seen: set[str] = set()
        page = 1
        while len(collected) < limit:
            request = functools.partial(
                self._client.get_all,
                filters={"AND": [{"user_id": CATALOGUE_USER_ID}]},
                page=page,
                page_size=page_size,
            )
            raw = self._call("list", request)
            items = _results(raw, self._where, "list")
            fresh = [item for item in items if str(item.get("id")) not in seen]
            seen.update(str(item.get("id")) for item in fresh)
            collected.extend(fresh)
            more = isinstance(raw, dict) and bool(raw.get("next"))
            if not fresh or not more:
                break
            page += 1
        return _entries(collected, self._where)[:limit]

    def search_pieces(self, query: str, *, limit: int, min_score: float) -> list[KnowledgeHit]:
        items = self._search(KNOWLEDGE_USER_ID, query, limit, min_score, "knowledge search")
        return _knowledge_hits(items, limit, min_score)

    def pieces(self, source: str) -> list[StoredPiece]:
        filters = {"AND": [{"user_id": KNOWLEDGE_USER_ID}, {"metadata": {"source": source}}]}
        collected: list[dict[str, Any]] = []
        seen: set[str] = set()
        page = 1
        while len(collected) < MAX_PIECES:
            request = functools.partial(
                self._client.get_all, filters=filters, page=page, page_size=MEMORY_PAGE_SIZE
            )
            raw = self._call("knowledge list", request)
            items = _results(raw, self._where, "knowledge list")
            fresh = [item for item in items if str(item.get("id")) not in seen]
            seen.update(str(item.get("id")) for item in fresh)
            collected.extend(fresh)
            if not fresh or not (isinstance(raw, dict) and raw.get("next")):
                break
            page += 1
        return _stored_pieces(collected, source)

    def add_piece(self, text: str, metadata: dict[str, str]) -> None:
        self._call(
            "knowledge add",
            lambda: self._client.add(
                [{"role": "user", "content": text}],
                user_id=KNOWLEDGE_USER_ID,
                metadata=dict(metadata),
                infer=False,
            ),
        )

    def delete(self, memory_id: str) -> None:
        self._call("delete", lambda: self._client.delete(memory_id))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._http.close()
        except Exception as exc:
            log.debug("closing the Mem0 platform client failed: %s", exc)

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        if self._closed:
            raise AnswerMemoryError(f"{self._where}: {what} after close()")
        try:
            return operation()
        except Exception as exc:
            raise self._error(what, exc) from exc

    def _error(self, what: str, exc: BaseException) -> AnswerMemoryError:
        return AnswerMemoryError(f"{self._where}: {what} failed: {_describe(exc, self._secrets)}")


# --------------------------------------------------------------------------- opening


def open_memory(
    *,
    mem0_api_key: str | None,
    mem0_host: str | None,
    data_dir: Path,
    openai_api_key: str,
    openai_base_url: str | None,
    embedding_model: str,
    embedding_dims: int,
    llm_model: str,
    timeout: float,
) -> AnswerMemory:
    """The platform when a Mem0 key is configured, else the local store under `data_dir`."""
    _prepare_environment(Path(data_dir))
    if mem0_api_key:
        return PlatformMemory(api_key=mem0_api_key, host=mem0_host or None, timeout=timeout)
    return LocalMemory(
        data_dir=Path(data_dir),
        openai_api_key=openai_api_key,
        openai_base_url=openai_base_url,
        embedding_model=embedding_model,
        embedding_dims=embedding_dims,
        llm_model=llm_model,
        timeout=timeout,
    )


_import_lock = threading.Lock()


def _prepare_environment(data_dir: Path) -> None:
    """Mem0 reads both variables once, at import time, so this must come first.

    Telemetry left on sends PostHog events, fetches a notice config from GitHub,
    prints "first run" notices to stderr and makes an offline exit hang for about
    70 s. `setdefault` leaves an operator's explicit choice alone. `MEM0_DIR` holds
    the config.json Mem0 writes on import (a random user id), kept out of `~`.
    """
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("MEM0_DIR", str(data_dir / "mem0"))


def _load_mem0(where: str) -> Any:
    """Import mem0 without letting it rewire process-wide settings.

    On import mem0 turns DeprecationWarnings on for the whole process and silences
    the `urllib3` logger; both are put back.
    """
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    with _import_lock:
        urllib3_logger = logging.getLogger("urllib3")
        urllib3_level = urllib3_logger.level
        try:
            with warnings.catch_warnings():
                module = importlib.import_module("mem0")
        except Exception as exc:
            raise AnswerMemoryError(f"{where}: cannot load mem0: {_describe(exc, [])}") from exc
        finally:
            urllib3_logger.setLevel(urllib3_level)
    return module


# --------------------------------------------------------------------------- helpers


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _pair_hash(question: str, answer: str) -> str:
    payload = _normalise(question) + "\x00" + _normalise(answer)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _new_entry(
    question: str,
    answer: str,
    source: str,
    conversation_id: str | None,
    extra: dict[str, str] | None,
) -> tuple[str, dict[str, str]]:
    """Validate a pair and build its metadata; bad input is the caller's bug, not I/O."""
    text, reply = question.strip(), answer.strip()
    if not text:
        raise ValueError("the question is empty")
    if not reply:
        raise ValueError("the answer is empty")
    if source not in _SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {sorted(_SOURCES)}")
    clash = sorted(set(extra or {}) & _RESERVED_METADATA)
    if clash:
        raise ValueError(f"extra metadata may not set {', '.join(clash)}")
    metadata = {str(key): str(value) for key, value in (extra or {}).items()}
    metadata.update(
        answer=reply,
        source=source,
        added_at=datetime.now(UTC).isoformat(timespec="seconds"),
        pair_hash=_pair_hash(text, reply),
    )
    if conversation_id:
        metadata["conversation_id"] = str(conversation_id)
    return text, metadata


def _clamp_unit(value: float) -> float:
    """Mem0 rejects thresholds outside [0, 1]; the exact cut is applied by `_rank`."""
    return min(max(float(value), 0.0), 1.0)


def _results(raw: Any, where: str, what: str) -> list[dict[str, Any]]:
    """The item list of a Mem0 answer (`{"results": [...]}` or a bare list)."""
    items = raw.get("results") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise AnswerMemoryError(
            f"{where}: {what} returned an unexpected answer ({type(raw).__name__})"
        )
    return [item for item in items if isinstance(item, dict)]


def _has_pair(items: Iterable[dict[str, Any]], pair_hash: str) -> bool:
    """Checked again here in case a backend ignores part of the filter."""
    for item in items:
        metadata = item.get("metadata")
        if isinstance(metadata, dict) and metadata.get("pair_hash") == pair_hash:
            return True
    return False


def _fields(item: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]] | None:
    """id, question, answer and metadata of a catalogue item; None for foreign items."""
    memory_id, question, metadata = item.get("id"), item.get("memory"), item.get("metadata")
    if memory_id is None or not isinstance(question, str) or not isinstance(metadata, dict):
        return None
    answer = metadata.get("answer")
    if not isinstance(answer, str) or not answer:
        return None
    return str(memory_id), question, answer, metadata


def _optional_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _score(item: dict[str, Any]) -> float | None:
    """Prefer the pure semantic score: Mem0 may blend BM25 and entity boosts into `score`."""
    details = item.get("score_details")
    value = details.get("semantic_score") if isinstance(details, dict) else None
    if value is None:
        value = item.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _hits(items: list[dict[str, Any]], where: str) -> list[MemoryHit]:
    hits: list[MemoryHit] = []
    skipped = 0
    for item in items:
        fields, score = _fields(item), _score(item)
        if fields is None or score is None:
            skipped += 1
            continue
        memory_id, question, answer, metadata = fields
        hits.append(
            MemoryHit(
                id=memory_id,
                question=question,
                answer=answer,
                score=score,
                source=str(metadata.get("source") or "unknown"),
                conversation_id=_optional_str(metadata.get("conversation_id")),
            )
        )
    if skipped:
        log.warning("%s: ignored %d search result(s) without an answer or score", where, skipped)
    return hits


def _rank(hits: list[MemoryHit], limit: int, min_score: float) -> list[MemoryHit]:
    kept = [hit for hit in hits if hit.score >= min_score]
    kept.sort(key=lambda hit: hit.score, reverse=True)
    return kept[:limit]


def _entries(items: list[dict[str, Any]], where: str) -> list[MemoryEntry]:
    """Newest first, by our own `added_at` (the backend's `created_at` as a fallback)."""
    entries: list[MemoryEntry] = []
    skipped = 0
    for item in items:
        fields = _fields(item)
        if fields is None:
            skipped += 1
            continue
        memory_id, question, answer, metadata = fields
        entries.append(
            MemoryEntry(
                id=memory_id,
                question=question,
                answer=answer,
                source=str(metadata.get("source") or "unknown"),
                conversation_id=_optional_str(metadata.get("conversation_id")),
                created_at=str(metadata.get("added_at") or item.get("created_at") or ""),
            )
        )
    if skipped:
        log.warning("%s: ignored %d entr(ies) without an answer", where, skipped)
    entries.sort(key=lambda entry: entry.created_at, reverse=True)
    return entries


def _knowledge_hits(
    items: list[dict[str, Any]], limit: int, min_score: float
) -> list[KnowledgeHit]:
    hits: list[KnowledgeHit] = []
    for item in items:
        metadata, score, text = item.get("metadata"), _score(item), item.get("memory")
        if not isinstance(metadata, dict) or score is None or not isinstance(text, str):
            continue
        if score < min_score or item.get("id") is None:
            continue
        hits.append(
            KnowledgeHit(
                id=str(item["id"]),
                text=str(metadata.get("text") or text),
                score=score,
                source=str(metadata.get("source") or "unknown"),
                doc_id=str(metadata.get("doc_id") or ""),
                title=str(metadata.get("title") or ""),
                url=_optional_str(metadata.get("url")),
                heading=str(metadata.get("heading") or ""),
            )
        )
    hits.sort(key=lambda hit: hit.score, reverse=True)
    return hits[:limit]


def _stored_pieces(items: list[dict[str, Any]], source: str) -> list[StoredPiece]:
    """Checked again here in case a backend ignores part of the filter."""
    pieces = []
    for item in items:
        metadata = item.get("metadata")
        if not isinstance(metadata, dict) or metadata.get("source") != source:
            continue
        if item.get("id") is None:
            continue
        pieces.append(
            StoredPiece(
                id=str(item["id"]),
                text=str(item.get("memory") or ""),
                metadata={str(k): str(v) for k, v in metadata.items()},
            )
        )
    return pieces


def _describe(exc: BaseException, secrets: list[str]) -> str:
    """Errors may echo their input, keys included: masked, with the cause's first line."""
    return Redactor(secrets)(describe(exc, 400, with_cause=True))
