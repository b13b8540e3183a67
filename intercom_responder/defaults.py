"""Every tunable and default, once.

The settings' defaults (the README's environment table) come first; the fixed tunables
of each part follow, grouped by the part that uses them. Change a number here and it
changes everywhere: no other module spells a default again. Imports nothing, so every
layer may use it.
"""

from __future__ import annotations

# --- settings (environment variables) -------------------------------------------------

INTERCOM_API_BASE = "https://api.intercom.io"
INTERCOM_API_VERSION = "2.16"
INTERCOM_TIMEOUT = 30.0
RESPONDER = "openai"
OPENAI_MODEL = "gpt-4o"
OPENAI_TIMEOUT = 60.0
OPENAI_MAX_RETRIES = 2
GPT_TRAINER_API_URL = "https://app.gpt-trainer.com/api/v1"
GPT_TRAINER_TIMEOUT = 60.0
#: GPT Trainer gives no confidence; without OPENAI_API_KEY to grade its answers, this one.
GPT_TRAINER_CONFIDENCE = 1.0
CONFIDENCE_THRESHOLD = 0.8
POLL_INTERVAL = 60.0
POLL_INTERVAL_MIN = 15.0
POLL_INTERVAL_MAX = 300.0
HEALTH_ADDR = "127.0.0.1:8000"
#: Seconds between sweeps: searches without the `waiting_since` filter (0: off).
SWEEP_INTERVAL = 900.0
DEBOUNCE_SECONDS = 15.0
CONCURRENCY = 4
STATE_FILE = "sessions.json"
DATA_DIR = "data"
MAX_MESSAGE_AGE_HOURS = 24.0
SKIP_ASSIGNED_TO_OTHERS = True
SESSION_TTL_HOURS = 24.0
MAX_ATTEMPTS = 5
MAX_AI_REPLIES_PER_HOUR = 3
MEMORY_TOP_K = 3
MEMORY_MIN_SCORE = 0.5
MEMORY_TIMEOUT = 10.0
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMS = 1536
SLACK_API_URL = "https://slack.com/api/"
REVIEW_TIMEOUT_MINUTES = 120.0
LOG_LEVEL = "INFO"
LOG_FORMAT = "text"

#: A match is never auto-answered (`ESCALATION_KEYWORDS`). "sue" is left out: it is a name.
ESCALATION_KEYWORDS: tuple[str, ...] = (
    "urgent",
    "emergency",
    "complaint",
    "lawyer",
    "attorney",
    "legal action",
    "chargeback",
    "fraud",
    "cancel my account",
    "close my account",
    "delete my account",
    "gdpr",
)

# --- Intercom client ----------------------------------------------------------------------

#: Conversations per search page (Intercom's maximum).
SEARCH_PAGE_SIZE = 150
#: Help-center articles per page of `GET /articles`.
ARTICLES_PAGE_SIZE = 50
#: Seconds to open a connection (reads get INTERCOM_TIMEOUT).
CONNECT_TIMEOUT = 5.0
#: HTTP attempts of one call that is safe to repeat (reads; writes only before sending).
HTTP_ATTEMPTS = 6
#: Longest wait for Intercom's rate-limit window to reset.
MAX_RATE_LIMIT_WAIT = 60.0
#: Share of a rate-limit window kept in reserve before callers wait for the reset.
RATE_LIMIT_RESERVE = 0.05

# --- polling ----------------------------------------------------------------------------------

#: Seconds the search looks back before the cursor. Intercom's `>` on dates may or may
#: not include the cursor's own second, a conversation can be updated in the same second
#: as the newest one seen, and the search index may lag a little behind writes.
OVERLAP_SECONDS = 60
#: Seconds after an `updated_at` second from which a read surely saw all its changes
#: (one second of resolution plus a second of clock difference).
SETTLE_SECONDS = 2

# --- one conversation ---------------------------------------------------------------------

#: How often one poll drafts again when the customer keeps writing during drafting.
MAX_REDRAFTS = 3
#: Tries of one post whose outcome was unknown (checked in between).
MAX_POST_TRIES = 3
#: Comments of context given to the model.
TRANSCRIPT_MESSAGES = 20
#: The window of MAX_AI_REPLIES_PER_HOUR.
AI_REPLY_WINDOW_SECONDS = 3600.0
#: Characters of the customer's messages used to search the answer memory.
MEMORY_QUERY_CHARS = 2000
#: Backoff after a failed attempt: doubling from the base, capped.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 1800.0
#: A conversation whose state could not be written (a database restart, a full disk) is
#: looked at again this soon, and no attempt is counted: it is not the message's fault.
STATE_RETRY_SECONDS = 5.0

#: Longest answer the daemon will forward; a longer one goes to a person, cut to this.
MAX_DRAFT_CHARS = 8000
#: Characters of one message, and of the whole transcript, shown to the model.
MAX_PROMPT_MESSAGE_CHARS = 4000
MAX_PROMPT_TRANSCRIPT_CHARS = 12000

# --- guards -----------------------------------------------------------------------------------

#: Failures in a row that open a dependency's circuit breaker, and how long it stays open.
BREAKER_FAILURES = 5
BREAKER_RESET_SECONDS = 60.0
#: After the answer memory failed to open, the next try comes no sooner than this.
MEMORY_REOPEN_SECONDS = 60.0
#: Local embedding calls get one retry within MEMORY_TIMEOUT.
EMBEDDING_RETRIES = 1

# --- Slack ------------------------------------------------------------------------------------

#: Seconds one Slack Web API call may take (review messages and `check`).
SLACK_TIMEOUT = 10.0
#: While Slack cannot be reached, connecting is tried again this often.
SLACK_RECONNECT_SECONDS = 30.0
#: At a stop, review decisions under way (a click being carried out) get this long to finish
#: before the Slack connection closes and the daemon goes on shutting down.
SLACK_DECISION_WAIT_SECONDS = 10.0
#: The aiohttp Socket Mode client notices a dropped network only at its next ping;
#: Slack's default of 10 s would leave clicks unanswered that long.
SLACK_PING_SECONDS = 2.0

# --- pictures (VISION) --------------------------------------------------------------------------

#: Images larger than this (MB) are not given to the model (MAX_IMAGE_MB).
MAX_IMAGE_MB = 5.0
#: Seconds one image download may take, the whole body included.
IMAGE_TIMEOUT = 10.0
#: Images given to the model per draft; more are named as not read.
MAX_IMAGES_PER_DRAFT = 4

# --- replicas (STATE_BACKEND=postgres) -------------------------------------------------------

#: A replica's claim on a conversation lasts this long unless renewed (LEASE_SECONDS):
#: a replica killed mid-work loses its claims after it, and another one goes on.
LEASE_SECONDS = 30.0
#: How often a claim that is taken is tried again while waiting for it.
CLAIM_RETRY_SECONDS = 0.2
#: A Slack click waits this long for a conversation another replica is working on.
CLAIM_WAIT_SECONDS = 15.0
#: A replica that does not hold the poll lease looks this often (or every POLL_INTERVAL_MIN,
#: if shorter) for what the leader found and whether the lease is free: no Intercom call,
#: a few statements in the database.
FOLLOWER_POLL_SECONDS = 2.0
#: At most this many found conversations a replica takes up in one poll (the longest waiting).
FOUND_LIST_LIMIT = 500

# --- business hours ---------------------------------------------------------------------------

#: Outside BUSINESS_HOURS a customer handed to the team is told this once per closed
#: period (AWAY_MESSAGE); {back} becomes when the team is back ("Monday 09:00").
AWAY_MESSAGE = (
    "Thanks for your message! Our team is away right now and back {back}. We will answer you then."
)
TIMEZONE = "UTC"

# --- routing --------------------------------------------------------------------------------

#: Below this confidence the model's team is not used (HANDOFF_TEAM_ID, or unassigned).
ROUTING_MIN_CONFIDENCE = 0.6
#: The workspace's teams are read again this often (and after an unknown-team error).
TEAMS_REFRESH_SECONDS = 3600.0
#: A routed ticket is remembered this long (so it is never classified twice), then pruned.
TICKET_RECORD_DAYS = 30

# --- playground ---------------------------------------------------------------------------

PLAYGROUND_HOST = "127.0.0.1"
PLAYGROUND_PORT = 8080
#: Longest customer message or edited answer the playground takes.
PLAYGROUND_MAX_TEXT_CHARS = 10_000

# --- check --------------------------------------------------------------------------------

#: Teammates shown when INTERCOM_ADMIN_ID is wrong, and models when OPENAI_MODEL is.
MAX_LISTED = 10

# --- state file -------------------------------------------------------------------------------

#: The journal is folded into the snapshot once it has this many lines, or as many
#: lines as there are conversations, whichever is more (and at every start and close).
COMPACT_MIN_LINES = 1000

# --- sync and the memory ------------------------------------------------------------------

#: Characters kept of a learned question or answer; longer ones are cut, not skipped.
MAX_LEARNED_QUESTION_CHARS = 4000
MAX_LEARNED_ANSWER_CHARS = 4000
#: Entries per page when listing the Mem0 platform catalogue.
MEMORY_PAGE_SIZE = 100
#: At most this many knowledge pieces per source are listed (the sync's view of them).
MAX_PIECES = 100_000
#: A file of the documents folder larger than this is skipped (`sync --docs`).
MAX_DOCUMENT_BYTES = 5_000_000
#: Knowledge pieces given to each draft, and the similarity they need (KNOWLEDGE_*).
KNOWLEDGE_TOP_K = 3
KNOWLEDGE_MIN_SCORE = 0.3
#: Hours between the daemon's own article imports (ARTICLES_SYNC_HOURS; 0: off).
ARTICLES_SYNC_HOURS = 24.0
#: The daemon's first article import comes this long after its start.
ARTICLES_SYNC_FIRST_DELAY_SECONDS = 60.0
#: Plain progress lines (when the output is not a terminal) at most this often.
SYNC_PROGRESS_EVERY_SECONDS = 5.0
