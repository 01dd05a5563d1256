# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The per-connection core of a worker, compiled: accept → first bytes → pick → connect → PROXY → relay → close.

Why it exists (issue 12, docs/dataplane-core.md): the Python loop spent ~95 % of its user time on
interpreter work around syscalls, so no amount of feature tuning could bring it to HAProxy's cost.
Here a connection is a C struct in one preallocated table, an epoll event carries the slot and a
generation in ``data.u64``, and nothing between ``accept4`` and ``close`` touches a Python object.
The loop returns to Python only when something Python owns needs it: the supervisor's pipe, a
signal, the health board's generation moved, or the 1 s sweep is due; a few times a second, never
per connection.

The behaviour is the Python worker's it replaced, rule for rule (the integration tests that pinned
it run against this core unchanged). One connection::

    AWAIT_DATA ──first bytes (a whole ClientHello, or client_hello_wait)──► CONNECTING
    CONNECTING ──established──► (PROXY header + first bytes) ──► RELAY ──both ways done──► closed
    CONNECTING ──fast open (a cookie): at once──► (header + first bytes in the SYN) ──► RELAY
    CONNECTING ──refused / timeout──► CONNECTING to the next Maglev candidate (bounded by retries)
    RELAY ──reset by the node before it answered, client sent nothing more──► CONNECTING (replay)

- AWAIT_DATA waits for the client's first bytes (up to 16 KiB) before choosing a backend, so an idle
  client never holds a backend connection; a partial TLS ClientHello waits ``client_hello_wait``
  for the rest, then goes without SNI.
- CONNECTING walks the Maglev candidates (``_maglev_c``) that are not down, one non-blocking connect
  at a time, up to ``retries`` more; each failure is counted by reason and reported to the health
  process (passive checks), and with ``passive_fall: 1`` the backend is skipped here at once.
- The PROXY header (``_wire_c``) and the first bytes go out in one ``send``. The byte counters count
  payload only: the header never, the first bytes once (a replay sends them again, the client sent
  them once).
- A reset from the node before it answered, while the client sent nothing more, replays the first
  bytes on the next candidate (``retry_on_reset``). Why: a node killed while our connect races its
  death completes the handshake in the kernel, then resets with our bytes unread; to the client
  that is a failed new connection, exactly what retries exist to hide. A reset (not a FIN) means the
  node had not read everything. A clean close before any answer may follow a request the node acted
  on, so it is replayed only when the first bytes are a whole TLS ClientHello: without a
  ServerHello no handshake happened and nothing was processed.
- RELAY copies through one scratch buffer per worker or splices through pooled pipes (a pipe is
  held only while bytes are in it, so idle connections hold none); in ``auto`` a direction that
  fills the buffer in one read switches to splice. Both sockets are registered once, edge-triggered,
  for IN|OUT|RDHUP: a flow reads until EAGAIN, a short copy read means "empty" only while the peer
  has not sent FIN (an EOF behind the last bytes raises no new edge), edges that come while
  connecting are remembered and replayed, and after 4 reads a direction waits for the others'
  turn (``again``).
- Fast open (``backend_fast_open``: ``TCP_FASTOPEN_CONNECT``). Once the node's address gave us a
  cookie, ``connect`` returns 0 at once and the first ``send`` (PROXY header + first bytes) leaves
  in the SYN, so the connection is in RELAY before the node has answered, and a failed connect
  shows up there instead: a refused SYN is ``ECONNREFUSED`` on a flow, a refused connect like any
  other (counted, reported, the next candidate gets the first bytes, ``retry_on_reset`` or not:
  nothing reached the node); a SYN still unanswered (``TCP_INFO``: SYN-SENT) at ``connect_timeout``
  is a connect timeout, replayed only under ``retry_on_reset`` since a node whose answer was lost
  may have read the SYN's bytes, else a reset. What the SYN had no room for waits in c2b for the
  handshake; sending it is not the client speaking again. If the kernel sent a plain SYN after
  all (the send fails with EINPROGRESS), the connection goes back to CONNECTING. Without a cookie
  the connect is an ordinary one (its SYN asks for a cookie).
- Every failure becomes a reset (``SO_LINGER`` 0) of the other side; a clean end is a FIN.

Memory. The connection table is ``calloc``ed for the whole capacity once: the kernel only backs
pages that are touched, and free slots are reused last-in first-out, so RSS follows the number of
open connections. A connection holds a 16.5 KiB buffer only while it waits for or replays its
first bytes; a replayable connection keeps an exact-size copy instead.

Reloads. Each listener's configuration is an immutable C snapshot with a reference count;
connections hold the one they started with, a reload installs a new one for the listening socket.
Python keeps the objects a snapshot points into (the Admission, the CompiledMaglev) alive until the
core reports the snapshot freed.

Sharing one port by SNI (issue 15, docs/dataplane.md). Listeners that name hostnames share their
endpoint's one socket: its snapshot is a *group* (``members_count`` > 0) holding a reference on each
member's own snapshot and a table of their names (``Route``). A connection starts on the group
(the group's admission, timeouts and counter row), always peeks the ClientHello, and once the
first bytes are decided (``connect_next`` from AWAIT_DATA) ``route`` moves it to the member that
``route_of`` picks: a reference on the member, the group's released, the member's admission
checked; from then on the connection is the member's as if it had been accepted there. No member:
a reset counted as ``no_route``. A plain listener pays one test of ``members_count`` at accept,
first bytes, connect and close; ``current`` (installed now) replaces "is the fd's snapshot" for
the passive-fall ejection, since a member is never the fd's snapshot itself.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset, strlen

from anycastlb.dataplane._c_net cimport *
from anycastlb.dataplane._maglev_c cimport CompiledMaglev, MaglevView, candidates, client_key
from anycastlb.dataplane._shared_limits cimport Admission, AdmissionC, admit_peer, release_peer
from anycastlb.dataplane._wire_c cimport (
    HELLO_INCOMPLETE,
    HELLO_NOT_TLS,
    HELLO_SNI,
    PROXY_HEADER_MAX,
    SNI_MAX,
    peek_hello,
    proxy_v1,
    proxy_v2,
)

cdef extern from *:
    """
    #ifndef ANYCASTLB_SOURCE_SHA256
    #error "build with setup.py: it defines ANYCASTLB_SOURCE_SHA256 (the .pyx's digest)"
    #endif
    """
    const char *ANYCASTLB_SOURCE_SHA256

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    enum:
        CLOCK_MONOTONIC
    int clock_gettime(int clock, timespec *ts)

SOURCE_SHA256 = ANYCASTLB_SOURCE_SHA256.decode("ascii")  # checked against the .pyx at import

# ---- constants shared with the Python side (core.py reads them by name) ---------------------------

cdef enum:
    FIRST_BYTES = 16384
    MAX_CANDIDATES = 12          # retries <= 10 (model/config.py) + the first + one spare
    ACCEPT_BATCH = 64
    EVENTS = 256
    MAX_ROUNDS = 4               # reads per direction per wake-up: one fast connection cannot starve the rest
    COPY_BUFFER = 65536          # relay: auto treats a read that fills this as bulk
    BUFFER_POOL = 256            # first-bytes buffers kept for reuse

# connection states (the diagram in the module docstring)
cdef enum:
    AWAIT_DATA = 0
    CONNECTING = 1
    RELAY = 2
    CLOSED = 3

# what one pump of a direction ends with
cdef enum:
    WANT_READ = 1
    WANT_WRITE = 2
    DONE = 3
    MORE = 4
    FAILED = -1

# what an epoll event is about (low 2 bits of data.u64)
cdef enum:
    TAG_CLIENT = 0
    TAG_BACKEND = 1
    TAG_LISTENER = 2
    TAG_PYTHON = 3

# relay modes
cdef enum:
    RELAY_COPY = 0
    RELAY_SPLICE = 1
    RELAY_AUTO = 2

# per-listener counters (int64 columns); the rejected reasons follow in REJECT_REASONS order
cdef enum:
    L_ACCEPTED = 0
    L_ACTIVE = 1                 # a gauge: take_listener_counters leaves it
    L_BYTES_IN = 2
    L_BYTES_OUT = 3
    L_RETRIES = 4
    L_IDLE_CLOSED = 5
    L_REJECTED = 6
    REJECT_NO_BACKEND = 4        # index in REJECT_REASONS
    REJECT_BACKENDS_FAILED = 5
    REJECT_NO_ROUTE = 6          # a shared port: no member names the SNI and none is the default
    L_COLUMNS = 13

# per-target (listener, backend) counters
cdef enum:
    T_CONNECTIONS = 0
    T_ACTIVE = 1                 # a gauge
    T_ERRORS = 2                 # CONNECT_ERRORS order
    ERR_REFUSED = 0
    ERR_TIMEOUT = 1
    ERR_UNREACHABLE = 2
    ERR_RESET = 3
    ERR_OTHER = 4
    T_BUCKETS = 7                # 15 connect-latency buckets (metrics.py's CONNECT_BUCKETS, then +Inf)
    T_SUM_NS = 22
    T_COLUMNS = 23

REJECT_REASONS = (
    "source_rate", "source_limit", "listener_rate", "listener_limit", "no_backend", "backends_failed", "no_route"
)
CONNECT_ERRORS = ("refused", "timeout", "unreachable", "reset", "other")
LAYOUT = {
    "RELAY_COPY": RELAY_COPY, "RELAY_SPLICE": RELAY_SPLICE, "RELAY_AUTO": RELAY_AUTO,
    "L_ACCEPTED": L_ACCEPTED, "L_ACTIVE": L_ACTIVE, "L_BYTES_IN": L_BYTES_IN, "L_BYTES_OUT": L_BYTES_OUT,
    "L_RETRIES": L_RETRIES, "L_IDLE_CLOSED": L_IDLE_CLOSED, "L_REJECTED": L_REJECTED,
    "T_CONNECTIONS": T_CONNECTIONS, "T_ACTIVE": T_ACTIVE, "T_ERRORS": T_ERRORS,
    "T_BUCKETS": T_BUCKETS, "T_SUM_NS": T_SUM_NS,
}
"""Where each counter sits in the rows ``take_listener_counters`` / ``take_target_counters`` return."""

cdef const char *_ERROR_TEXT[5]
_ERROR_TEXT[:] = [b"refused", b"timeout", b"unreachable", b"reset", b"other"]

cdef double[14] _CONNECT_BOUNDS
_bounds = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
for _i in range(14):
    _CONNECT_BOUNDS[_i] = _bounds[_i]
CONNECT_BOUNDS = _bounds  # metrics.py's CONNECT_BUCKETS; a test keeps them equal


cdef inline double monotonic() noexcept nogil:
    """time.monotonic(): the same clock, so deadlines and rate windows agree with the Python side."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline int connect_error(int code) noexcept nogil:
    if code == ECONNREFUSED:
        return ERR_REFUSED
    if code == ETIMEDOUT:
        return ERR_TIMEOUT
    if code == EHOSTUNREACH or code == ENETUNREACH:
        return ERR_UNREACHABLE
    if code == ECONNRESET:
        return ERR_RESET
    return ERR_OTHER


cdef inline void reset_on_close(int fd) noexcept nogil:
    cdef linger hard
    hard.l_onoff = 1
    hard.l_linger = 0
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard))


# ---- the structs ---------------------------------------------------------------------------------

cdef struct Backend:
    sockaddr_storage address
    socklen_t address_length
    int family
    uint32_t target            # row in the target counters (Python keys it by listener name + backend)
    uint8_t reported_down      # the health process's verdict
    uint8_t local_down         # this worker's own failed connect (passive_fall: 1)
    double local_since
    char *report               # the passive report's "listener\0backend\0" prefix
    Py_ssize_t report_length


cdef struct Route:
    const char *name           # exact: the whole name; wildcard: the parent after "*." (canonical, lowercase)
    int length
    int member                 # index in the group's members
    bint wildcard


cdef int route_of(const Route *routes, int count, const char *server_name, Py_ssize_t length,
                  int default_member) noexcept nogil:
    """hostnames.route_for in C: the member serving ``server_name`` (any case, a trailing dot
    ignored), exact names before wildcards (``*.`` + one label), else ``default_member`` (-1: none).

    A linear scan: a group has a few dozen names at most (64 per member), and it runs once per
    connection of a shared port only, after the first bytes arrived."""
    cdef char name[SNI_MAX + 1]
    cdef Py_ssize_t index, head
    cdef const char *dot
    cdef char c
    if length > 0 and server_name[length - 1] == 46:  # "."
        length -= 1
    if length <= 0 or length > SNI_MAX:
        return default_member
    for index in range(length):
        c = server_name[index]
        name[index] = c + 32 if 65 <= c <= 90 else c
    for index in range(count):
        if not routes[index].wildcard and routes[index].length == length and memcmp(routes[index].name, name, length) == 0:
            return routes[index].member
    dot = <const char *>memchr(name, 46, length)
    if dot == NULL:
        return default_member
    head = dot - name
    if head == 0 or (head == 1 and name[0] == 42):  # "" or "*": a wildcard label never matches itself
        return default_member
    for index in range(count):
        if (
            routes[index].wildcard and routes[index].length == length - head - 1
            and memcmp(routes[index].name, dot + 1, length - head - 1) == 0
        ):
            return routes[index].member
    return default_member


def route_server_name(server_name, list routes, int default_member):
    """Tests only: :c:func:`route_of` on ``server_name`` (bytes, or None: no SNI) with a table of
    ``(pattern, member index)``, as ``install_group`` builds it."""
    cdef Route *table = <Route *>calloc(max(len(routes), 1), sizeof(Route))
    cdef bytes keep = b""
    cdef list kept = []
    cdef int index
    cdef bytes name = server_name if server_name is not None else b""
    if table == NULL:
        raise MemoryError()
    try:
        for index, (pattern, member) in enumerate(routes):
            _fill_route(&table[index], pattern, member, kept)
        return route_of(table, len(routes), name, len(name), default_member)
    finally:
        free(table)


cdef void _fill_route(Route *route, str pattern, int member, list kept):
    """One row of a route table; ``kept`` holds the bytes its name points into."""
    cdef bytes text
    route.wildcard = pattern.startswith("*.")
    text = (pattern[2:] if route.wildcard else pattern).encode("ascii")
    kept.append(text)
    route.name = text
    route.length = len(text)
    route.member = member


cdef struct Listener:
    int refs                   # the listening socket's install + every connection that started on it
    int fd
    uint32_t row               # row in the listener counters
    int family
    int proxy                  # 0 none, 1 v1, 2 v2
    bint sni_authority
    bint server_speaks_first
    bint retry_on_reset
    bint fast_open             # TCP_FASTOPEN_CONNECT: the header and first bytes go in the SYN
    int retries
    int passive_fall
    double connect_timeout
    double first_data_timeout
    double client_hello_wait
    double idle_timeout
    bint has_destination
    sockaddr_storage destination
    AdmissionC *admission
    MaglevView *maglev
    int backends_count
    Backend *backends
    uint8_t *skip              # per backend: pass over it (down), or NULL: skip none (all up, or fail open)
    int64_t key                # Python's handle for the objects this snapshot points into
    bint paused
    bint current               # installed now (on its socket, or as a member of the installed group)
    # A sharing group's socket (members_count > 0): connections start here, and once the SNI is
    # known move to a member's own snapshot (Core.route); it holds one reference on each member.
    int members_count
    Listener **members
    int default_member         # index in members, or -1: an unmatched connection is reset
    Route *routes
    int routes_count
    char *route_names          # the routes' names point into this one block


cdef struct Flow:
    int src
    int dst
    int state
    bint done
    bint peer_closed
    bint bulk
    bint splice
    int64_t moved              # delivered since the last harvest
    char *left                 # copy: bytes read but not yet taken by dst
    Py_ssize_t left_at
    Py_ssize_t left_length
    int pipe_read
    int pipe_write
    Py_ssize_t pending         # splice: bytes in the pipe


cdef struct Conn:
    uint32_t generation
    int state
    int client
    int backend
    uint32_t attempt           # backend sockets opened so far (tags their epoll events)
    Listener *listener
    uint32_t source_bucket
    sockaddr_storage peer
    char *buffer               # PROXY_HEADER_MAX bytes of room, then the first bytes
    Py_ssize_t buffer_size
    Py_ssize_t first_length
    char authority[256]
    int authority_length
    bint hello_partial
    int candidates[MAX_CANDIDATES]
    int candidates_count
    int next_candidate
    int target                 # index into listener.backends, -1 before the first connect
    Py_ssize_t first_counted   # how many of the first bytes the counters have (a replay counts the rest)
    bint fast_opened           # connect() returned at once (TFO cookie): the SYN carries our first send
    bint primed_first          # fast open: the part of the first send the SYN had no room for waits in c2b
    bint replayable
    bint slots_released        # a group's connection gave its admission slots back (route refused it)
    uint32_t client_events
    Py_ssize_t skip_counting
    double deadline
    double last_active
    double connect_started
    uint64_t id
    Flow c2b
    Flow b2c


cdef struct Timer:
    double deadline
    uint32_t slot
    uint32_t generation


cdef struct Again:
    uint32_t slot
    uint32_t generation
    int which                  # 0: c2b, 1: b2c


cdef inline uint64_t tag(uint32_t slot, uint32_t generation, uint32_t attempt, int kind) noexcept nogil:
    return (<uint64_t>generation << 32) | (<uint64_t>(slot & 0xFFFFFF) << 8) | ((attempt & 0x3F) << 2) | kind


cdef class Core:
    """One worker's connections, listeners and counters; driven by :meth:`run`."""

    cdef int epoll
    cdef epoll_event events[EVENTS]  # the last epoll_wait's batch (kept while Python applies health)
    cdef int pending_count
    cdef Conn *conns
    cdef uint32_t capacity
    cdef uint32_t *free_slots
    cdef uint32_t free_count
    cdef uint32_t high_water
    cdef public uint32_t open_connections
    cdef Timer *timers
    cdef uint32_t timers_count, timers_capacity
    cdef Again *again
    cdef uint32_t again_count, again_capacity
    cdef char *scratch
    cdef Py_ssize_t scratch_size
    cdef int relay
    cdef Py_ssize_t pipe_size
    cdef int *pipes                 # spare pipes: read, write pairs
    cdef int pipes_count
    cdef char **buffers             # spare first-bytes buffers
    cdef int buffers_count
    cdef int reports                # the health process's datagram socket, or -1
    cdef uint64_t id_prefix
    cdef uint64_t id_sequence
    cdef double now
    cdef int64_t *listener_counters
    cdef uint32_t listener_rows
    cdef int64_t *target_counters
    cdef uint32_t target_rows
    cdef sockaddr_storage *last_refused    # per listener row and reason: the last refused source
    cdef Listener **listeners       # installed snapshots, indexed by listening fd
    cdef int listeners_size
    cdef const uint64_t *generation_word  # the health board's, or NULL
    cdef public uint64_t seen_generation
    cdef list _ready                # Python fds readable after the last run()
    cdef list _freed                # keys of snapshots no connection uses any more
    cdef dict _snapshots            # key -> the Python objects a snapshot points into
    cdef int64_t _next_key
    cdef object _board              # keeps the health board's memory alive
    cdef public int64_t internal_errors

    def __cinit__(self, int relay, Py_ssize_t pipe_size, uint64_t id_prefix, int reports_fd, uint32_t capacity):
        self.epoll = epoll_create1(EPOLL_CLOEXEC)
        if self.epoll < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.capacity = capacity
        self.conns = <Conn *>calloc(capacity, sizeof(Conn))
        self.free_slots = <uint32_t *>calloc(capacity, sizeof(uint32_t))
        self.timers_capacity = 1024
        self.timers = <Timer *>malloc(self.timers_capacity * sizeof(Timer))
        self.again_capacity = 256
        self.again = <Again *>malloc(self.again_capacity * sizeof(Again))
        self.relay = relay
        self.pipe_size = pipe_size
        self.scratch_size = COPY_BUFFER if relay == RELAY_AUTO else pipe_size
        self.scratch = <char *>malloc(self.scratch_size)
        self.pipes = <int *>malloc(2 * 256 * sizeof(int))
        self.buffers = <char **>malloc(BUFFER_POOL * sizeof(char *))
        self.reports = reports_fd
        self.id_prefix = id_prefix
        self.listeners_size = 1024
        self.listeners = <Listener **>calloc(self.listeners_size, sizeof(Listener *))
        if (
            self.conns == NULL or self.free_slots == NULL or self.timers == NULL or self.again == NULL
            or self.scratch == NULL or self.pipes == NULL or self.buffers == NULL or self.listeners == NULL
        ):
            raise MemoryError("the data plane core could not allocate its tables")
        self._ready = []
        self._freed = []
        self._snapshots = {}
        self.now = monotonic()

    def __dealloc__(self):
        cdef uint32_t slot
        if self.conns != NULL:
            for slot in range(self.high_water):
                if self.conns[slot].state != CLOSED and self.conns[slot].generation:
                    self.close_conn(&self.conns[slot], True)
        while self.pipes_count:
            self.pipes_count -= 1
            close(self.pipes[2 * self.pipes_count])
            close(self.pipes[2 * self.pipes_count + 1])
        while self.buffers_count:
            self.buffers_count -= 1
            free(self.buffers[self.buffers_count])
        if self.epoll >= 0:
            close(self.epoll)
        free(self.conns)
        free(self.free_slots)
        free(self.timers)
        free(self.again)
        free(self.scratch)
        free(self.pipes)
        free(self.buffers)
        free(self.listener_counters)
        free(self.target_counters)
        free(self.last_refused)
        free(self.listeners)

    # ==== the Python side's handles ==============================================================

    def watch_python_fd(self, int fd):
        """Make ``run`` return when ``fd`` is readable (level-triggered: read it, or it returns again)."""
        cdef epoll_event event
        event.events = EPOLLIN
        event.data.u64 = (<uint64_t>fd << 8) | TAG_PYTHON
        if epoll_ctl(self.epoll, EPOLL_CTL_ADD, fd, &event) < 0:
            raise OSError(errno, f"epoll_ctl(ADD) of fd {fd} failed")

    def unwatch_python_fd(self, int fd):
        epoll_ctl(self.epoll, EPOLL_CTL_DEL, fd, NULL)

    def watch_generation(self, board, uint64_t seen):
        """Return from ``run`` when the health board's generation (its first 8 bytes) moves on."""
        cdef const uint64_t[::1] words = memoryview(board).cast("B")[:8].cast("Q")
        self._board = (board, words)
        self.generation_word = &words[0]
        self.seen_generation = seen

    def seen(self, uint64_t generation):
        self.seen_generation = generation

    def ensure_rows(self, uint32_t listener_rows, uint32_t target_rows):
        """Grow the counter tables (Python hands out rows by listener name and by backend)."""
        cdef void *grown
        if listener_rows > self.listener_rows:
            grown = realloc(self.listener_counters, listener_rows * L_COLUMNS * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self.listener_counters = <int64_t *>grown
            memset(&self.listener_counters[self.listener_rows * L_COLUMNS], 0,
                   (listener_rows - self.listener_rows) * L_COLUMNS * sizeof(int64_t))
            grown = realloc(self.last_refused, listener_rows * 6 * sizeof(sockaddr_storage))
            if grown == NULL:
                raise MemoryError()
            self.last_refused = <sockaddr_storage *>grown
            memset(&self.last_refused[self.listener_rows * 6], 0,
                   (listener_rows - self.listener_rows) * 6 * sizeof(sockaddr_storage))
            self.listener_rows = listener_rows
        if target_rows > self.target_rows:
            grown = realloc(self.target_counters, target_rows * T_COLUMNS * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self.target_counters = <int64_t *>grown
            memset(&self.target_counters[self.target_rows * T_COLUMNS], 0,
                   (target_rows - self.target_rows) * T_COLUMNS * sizeof(int64_t))
            self.target_rows = target_rows

    def take_listener_counters(self, uint32_t row):
        """The row's counters since the last take (zeroed), except ``L_ACTIVE``, a gauge."""
        if row >= self.listener_rows:
            raise IndexError(f"listener row {row} was never allocated (ensure_rows)")
        cdef int64_t *counters = &self.listener_counters[row * L_COLUMNS]
        values = [counters[i] for i in range(L_COLUMNS)]
        active = counters[L_ACTIVE]
        memset(counters, 0, L_COLUMNS * sizeof(int64_t))
        counters[L_ACTIVE] = active
        return values

    def take_target_counters(self, uint32_t row):
        """The target's counters since the last take (zeroed), except ``T_ACTIVE``, a gauge."""
        if row >= self.target_rows:
            raise IndexError(f"target row {row} was never allocated (ensure_rows)")
        cdef int64_t *counters = &self.target_counters[row * T_COLUMNS]
        values = [counters[i] for i in range(T_COLUMNS)]
        active = counters[T_ACTIVE]
        memset(counters, 0, T_COLUMNS * sizeof(int64_t))
        counters[T_ACTIVE] = active
        return values

    def last_refused_source(self, uint32_t row, int reason):
        """The last source refused for ``reason`` on the listener row, as text."""
        if row >= self.listener_rows or not 0 <= reason < 6:
            raise IndexError(f"no refusal slot for listener row {row}, reason {reason}")
        return _address_text(<sockaddr *>&self.last_refused[row * 6 + reason])

    def install(
        self,
        listening,
        uint32_t row,
        config,
        Admission admission,
        CompiledMaglev maglev,
        list backends,
        bytes reported_down,
    ):
        """Serve ``listening`` (a socket object) with this listener config from now on.

        ``backends``: ``(address text, port, target row, passive report prefix)`` in the order of
        ``maglev``'s indices. Open connections keep the snapshot they started with.
        """
        cdef int fd = listening.fileno()
        cdef Listener *old = self.listener_of(fd)
        cdef Listener *snapshot = self.build(
            fd, listening.family, row, config, admission, maglev, backends, reported_down,
            self.previous(old, row),
        )
        self.put(fd, snapshot)

    def install_group(
        self,
        listening,
        uint32_t row,
        config,
        Admission admission,
        list members,
        list routes,
        int default_member,
    ):
        """Serve ``listening`` as a sharing group (``sni_group.py``): ``config`` and ``admission`` are
        the group socket's own (until the SNI is known), ``members`` one ``(row, config, admission,
        maglev, backends, reported_down)`` each (as :meth:`install` takes them), ``routes`` the
        ``(hostname pattern, member index)`` table, ``default_member`` an index or -1.

        Every member gets a new snapshot, as a reload of a plain listener does; open connections keep
        theirs (those still waiting for their first bytes keep the old group and its members)."""
        cdef int fd = listening.fileno(), index, count = len(members)
        cdef Listener *old = self.listener_of(fd)
        cdef Listener *group
        cdef Py_ssize_t names = 0, at = 0
        cdef bytes text
        if not 0 < count <= 65535 or not -1 <= default_member < count:
            raise ValueError(f"a sharing group needs 1-65535 members and a default in range, not {count}, {default_member}")
        for pattern, member in routes:
            if not 0 <= member < count:
                raise ValueError(f"route {pattern!r} names member {member} of {count}")
            names += len(pattern) + 1
        group = self.build(fd, listening.family, row, config, admission, None, [], b"", NULL)
        try:
            group.members = <Listener **>calloc(count, sizeof(Listener *))
            group.routes = <Route *>calloc(max(len(routes), 1), sizeof(Route))
            group.route_names = <char *>malloc(max(names, 1))
            if group.members == NULL or group.routes == NULL or group.route_names == NULL:
                raise MemoryError()
            group.default_member = default_member
            for index in range(count):
                member_row, member_config, member_admission, maglev, backends, reported_down = members[index]
                group.members[index] = self.build(
                    fd, listening.family, member_row, member_config, member_admission, maglev, backends,
                    reported_down, self.previous(old, member_row),
                )
                group.members_count = index + 1
            for index, (pattern, member) in enumerate(routes):
                wildcard = pattern.startswith("*.")
                text = (pattern[2:] if wildcard else pattern).encode("ascii")
                memcpy(group.route_names + at, <char *>text, len(text) + 1)
                group.routes[index].name = group.route_names + at
                group.routes[index].length = len(text)
                group.routes[index].member = member
                group.routes[index].wildcard = wildcard
                at += len(text) + 1
            group.routes_count = len(routes)
        except BaseException:
            self.unref(group)  # frees it and the members built so far
            raise
        self.put(fd, group)

    cdef Listener *previous(self, Listener *old, uint32_t row) noexcept:
        """The snapshot a new one for ``row`` replaces (to carry local ejections over), or NULL."""
        cdef int index
        if old == NULL:
            return NULL
        if old.members_count == 0:
            return old  # (backends match by target row, which is per listener name)
        for index in range(old.members_count):
            if old.members[index].row == row:
                return old.members[index]
        return NULL

    cdef Listener *build(self, int fd, int family, uint32_t row, config, Admission admission,
                         CompiledMaglev maglev, list backends, bytes reported_down, Listener *old) except NULL:
        """A snapshot of one listener (``maglev`` None: a group's socket, which has no backends)."""
        cdef Listener *snapshot
        cdef Backend *backend
        cdef int index, other, count = len(backends)
        cdef bytes prefix
        if row >= self.listener_rows:
            raise IndexError(f"listener row {row} was never allocated (ensure_rows)")
        for host, port, target, prefix in backends:
            if target >= self.target_rows:
                raise IndexError(f"target row {target} was never allocated (ensure_rows)")
        snapshot = <Listener *>calloc(1, sizeof(Listener))
        if snapshot == NULL:
            raise MemoryError()
        snapshot.refs = 1
        snapshot.fd = fd
        snapshot.row = row
        snapshot.family = family
        snapshot.default_member = -1
        snapshot.proxy = {"none": 0, "v1": 1, "v2": 2}[config.proxy_protocol]
        snapshot.sni_authority = config.sni_authority
        snapshot.server_speaks_first = config.server_speaks_first
        snapshot.retry_on_reset = config.retry_on_reset
        snapshot.fast_open = config.backend_fast_open
        snapshot.retries = min(config.retries, MAX_CANDIDATES - 1)
        snapshot.passive_fall = config.health.passive_fall
        snapshot.connect_timeout = config.connect_timeout
        snapshot.first_data_timeout = config.first_data_timeout
        snapshot.client_hello_wait = config.client_hello_wait
        snapshot.idle_timeout = config.idle_timeout
        snapshot.has_destination = not config.address.is_unspecified
        if snapshot.has_destination:
            _fill_address(&snapshot.destination, str(config.address), config.port)
        snapshot.admission = &admission.c
        snapshot.maglev = &maglev.view if maglev is not None else NULL
        snapshot.backends_count = count
        snapshot.backends = <Backend *>calloc(max(count, 1), sizeof(Backend))
        snapshot.skip = <uint8_t *>calloc(max(count, 1), 1)
        if snapshot.backends == NULL or snapshot.skip == NULL:
            self.free_listener(snapshot)
            raise MemoryError()
        for index in range(count):
            host, port, target, prefix = backends[index]
            backend = &snapshot.backends[index]
            backend.address_length = _fill_address(&backend.address, host, port)
            backend.family = backend.address.ss_family
            backend.target = target
            backend.reported_down = reported_down[index] if index < len(reported_down) else 0
            backend.report = <char *>malloc(len(prefix) + 16)
            if backend.report == NULL:
                self.free_listener(snapshot)
                raise MemoryError()
            memcpy(backend.report, <char *>prefix, len(prefix))
            backend.report_length = len(prefix)
            if old != NULL:  # a local ejection outlives a reload until the health process rules on it
                for other in range(old.backends_count):
                    if old.backends[other].target == target and old.backends[other].local_down:
                        backend.local_down = 1
                        backend.local_since = old.backends[other].local_since
        self.refresh_skip(snapshot)
        self._next_key += 1
        snapshot.key = self._next_key
        self._snapshots[snapshot.key] = (admission, maglev)
        return snapshot

    cdef put(self, int fd, Listener *snapshot):
        """Install a built snapshot on its socket; the one it replaces lives on while connections hold it."""
        cdef Listener *old = self.listener_of(fd)
        self.set_current(snapshot, True)
        if old == NULL:
            self.register_listener(fd, snapshot)
        else:
            snapshot.paused = old.paused
            self.listeners[fd] = snapshot
            self.set_current(old, False)
            self.unref(old)

    cdef void set_current(self, Listener *snapshot, bint current) noexcept:
        cdef int index
        snapshot.current = current
        for index in range(snapshot.members_count):
            snapshot.members[index].current = current

    def remove(self, listening):
        """Stop serving a listening socket (the caller closes it); open connections run on."""
        cdef int fd = listening.fileno()
        cdef Listener *snapshot = self.listener_of(fd)
        if snapshot == NULL:
            return
        epoll_ctl(self.epoll, EPOLL_CTL_DEL, fd, NULL)
        self.listeners[fd] = NULL
        self.set_current(snapshot, False)
        self.unref(snapshot)

    def accept_queued(self, listening):
        """Take what is queued on a listening socket now (before it is closed: a closed
        SO_REUSEPORT socket resets its queue)."""
        cdef Listener *snapshot = self.listener_of(listening.fileno())
        if snapshot != NULL:
            self.now = monotonic()
            self.accept_batch(snapshot)

    def apply_health(self, listening, bytes reported_down, double reports_through, int member=-1):
        """Take the health process's verdicts; drop local ejections it has now taken into account.
        ``member``: which member of a sharing group (its index in ``install_group``), -1 for a plain one."""
        cdef Listener *snapshot = self.member_of(listening.fileno(), member)
        cdef int index
        if snapshot == NULL:
            return
        for index in range(snapshot.backends_count):
            snapshot.backends[index].reported_down = reported_down[index] if index < len(reported_down) else 0
            if snapshot.backends[index].local_down and snapshot.backends[index].local_since <= reports_through:
                snapshot.backends[index].local_down = 0
        self.refresh_skip(snapshot)

    def down_flags(self, listening, int member=-1):
        """What the candidate walk passes over now (tests and status)."""
        cdef Listener *snapshot = self.member_of(listening.fileno(), member)
        if snapshot == NULL or snapshot.skip == NULL:
            return b""
        return bytes([snapshot.skip[i] for i in range(snapshot.backends_count)])

    cdef Listener *member_of(self, int fd, int member) noexcept:
        cdef Listener *snapshot = self.listener_of(fd)
        if snapshot == NULL or member < 0:
            return snapshot
        return snapshot.members[member] if member < snapshot.members_count else NULL

    def freed_snapshots(self):
        """Drop the Python objects of snapshots no connection uses any more."""
        freed, self._freed = self._freed, []
        for key in freed:
            self._snapshots.pop(key, None)
        return len(freed)

    def sweep(self, double now):
        """Once a second: idle timeouts and byte counts; paused listeners accept again."""
        cdef uint32_t slot
        cdef Conn *conn
        cdef int fd
        cdef epoll_event event
        self.now = now
        for slot in range(self.high_water):
            conn = &self.conns[slot]
            if conn.generation == 0 or conn.state == CLOSED:
                continue
            self.harvest(conn)
            if conn.state == RELAY and now - conn.last_active > conn.listener.idle_timeout:
                self.listener_counters[conn.listener.row * L_COLUMNS + L_IDLE_CLOSED] += 1
                self.close_conn(conn, False)
        for fd in range(self.listeners_size):
            if self.listeners[fd] != NULL and self.listeners[fd].paused:
                self.listeners[fd].paused = False
                event.events = EPOLLIN
                event.data.u64 = (<uint64_t>fd << 8) | TAG_LISTENER
                epoll_ctl(self.epoll, EPOLL_CTL_MOD, fd, &event)
        self.freed_snapshots()

    def close_all(self):
        """Reset every open connection (the drain timeout ran out)."""
        cdef uint32_t slot
        cleared = 0
        for slot in range(self.high_water):
            if self.conns[slot].generation and self.conns[slot].state != CLOSED:
                self.close_conn(&self.conns[slot], True)
                cleared += 1
        self.freed_snapshots()
        return cleared

    def run(self, double until):
        """Serve until ``until`` (monotonic seconds), a watched Python fd is readable, or the health
        board moved; returns the readable Python fds.

        The board is checked right after each ``epoll_wait``, before its events are handled: when it
        moved, the batch is kept and handled at the start of the next ``run``, after the Python side
        applied the new verdicts, so no connection accepted after a verdict is published is sent to
        a backend it ejected (the Python worker read the board at the same point).
        """
        cdef int index, timeout
        cdef double wait
        self._ready = []
        if self.pending_count:
            self.dispatch_pending()
        while not self._ready and self.now < until:
            wait = until - self.now
            if self.timers_count and self.timers[0].deadline - self.now < wait:
                wait = self.timers[0].deadline - self.now
            if self.again_count or wait <= 0:
                timeout = 0
            else:
                timeout = <int>(wait * 1000.0) + 1
            self.pending_count = epoll_wait(self.epoll, self.events, EVENTS, timeout)
            self.now = monotonic()
            if self.pending_count < 0:
                if errno != EINTR:
                    raise OSError(errno, "epoll_wait failed")
                self.pending_count = 0
            if self.generation_word != NULL and self.generation_word[0] != self.seen_generation:
                break  # Python applies the new health first; the batch waits in self.events
            self.dispatch_pending()
        return self._ready

    cdef void dispatch_pending(self) noexcept:
        """Handle the events of the last ``epoll_wait``, then re-pumps and due timers."""
        cdef int index, count = self.pending_count
        self.pending_count = 0
        for index in range(count):
            self.dispatch(self.events[index].data.u64, self.events[index].events)
        if self.again_count:
            self.pump_again()
        if self.timers_count and self.timers[0].deadline <= self.now:
            self.expire()

    # ==== listeners ================================================================================

    cdef Listener *listener_of(self, int fd) noexcept:
        if fd < 0 or fd >= self.listeners_size:
            return NULL
        return self.listeners[fd]

    cdef register_listener(self, int fd, Listener *snapshot):
        cdef epoll_event event
        cdef int size
        cdef void *grown
        if fd >= self.listeners_size:
            size = max(fd + 1, 2 * self.listeners_size)
            grown = realloc(self.listeners, size * sizeof(Listener *))
            if grown == NULL:
                self.unref(snapshot)
                raise MemoryError()
            self.listeners = <Listener **>grown
            memset(&self.listeners[self.listeners_size], 0, (size - self.listeners_size) * sizeof(Listener *))
            self.listeners_size = size
        self.listeners[fd] = snapshot
        event.events = EPOLLIN
        event.data.u64 = (<uint64_t>fd << 8) | TAG_LISTENER
        if epoll_ctl(self.epoll, EPOLL_CTL_ADD, fd, &event) < 0:
            self.listeners[fd] = NULL
            self.unref(snapshot)
            raise OSError(errno, f"epoll_ctl(ADD) of listening fd {fd} failed")

    cdef void refresh_skip(self, Listener *snapshot) noexcept:
        """Down = reported or locally ejected; when every backend is down, skip none (fail open:
        backend_set.py says why)."""
        cdef int index, down = 0
        for index in range(snapshot.backends_count):
            snapshot.skip[index] = snapshot.backends[index].reported_down | snapshot.backends[index].local_down
            down += snapshot.skip[index]
        if down == snapshot.backends_count:
            memset(snapshot.skip, 0, max(snapshot.backends_count, 1))

    cdef void unref(self, Listener *snapshot) noexcept:
        snapshot.refs -= 1
        if snapshot.refs == 0:
            self._freed.append(snapshot.key)
            self.free_listener(snapshot)

    cdef void free_listener(self, Listener *snapshot) noexcept:
        cdef int index
        if snapshot.backends != NULL:
            for index in range(snapshot.backends_count):
                free(snapshot.backends[index].report)
        if snapshot.members != NULL:
            for index in range(snapshot.members_count):
                self.unref(snapshot.members[index])  # the group's reference; routed connections hold theirs
        free(snapshot.members)
        free(snapshot.routes)
        free(snapshot.route_names)
        free(snapshot.backends)
        free(snapshot.skip)
        free(snapshot)

    # ==== events ===================================================================================

    cdef void dispatch(self, uint64_t data, uint32_t events) noexcept:
        cdef int kind = data & 3
        cdef uint32_t slot, generation
        cdef Conn *conn
        cdef Listener *snapshot
        if kind == TAG_LISTENER:
            snapshot = self.listener_of(<int>(data >> 8))
            if snapshot != NULL:
                self.accept_batch(snapshot)
            return
        if kind == TAG_PYTHON:
            self._ready.append(<int>(data >> 8))
            return
        slot = (data >> 8) & 0xFFFFFF
        generation = data >> 32
        conn = &self.conns[slot]
        if conn.generation != generation or conn.state == CLOSED:
            return  # the connection this event was for is gone
        conn.last_active = self.now
        if kind == TAG_CLIENT:
            self.on_client(conn, events)
        elif ((data >> 2) & 0x3F) == (conn.attempt & 0x3F) and conn.backend >= 0:
            self.on_backend(conn, events)

    cdef void accept_batch(self, Listener *snapshot) noexcept:
        cdef int index, fd, refused, code
        cdef sockaddr_storage peer
        cdef socklen_t length
        cdef uint32_t bucket
        cdef Conn *conn
        cdef epoll_event event
        for index in range(ACCEPT_BATCH):
            length = sizeof(peer)
            fd = accept4(snapshot.fd, <sockaddr *>&peer, &length, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                code = errno
                if code == EMFILE or code == ENFILE or code == ENOBUFS or code == ENOMEM:
                    # out of descriptors or memory: stop accepting until the next sweep instead of spinning
                    event.events = 0
                    event.data.u64 = (<uint64_t>snapshot.fd << 8) | TAG_LISTENER
                    epoll_ctl(self.epoll, EPOLL_CTL_MOD, snapshot.fd, &event)
                    snapshot.paused = True
                return
            refused = admit_peer(snapshot.admission, <sockaddr *>&peer, self.now, &bucket)
            if refused:
                self.listener_counters[snapshot.row * L_COLUMNS + L_REJECTED + refused - 1] += 1
                memcpy(&self.last_refused[snapshot.row * 6 + refused - 1], &peer, length)
                reset_on_close(fd)
                close(fd)
                continue
            conn = self.new_conn(snapshot, fd, &peer, length, bucket)
            if conn == NULL:  # the table is full: the fd limit was raised past the capacity
                release_peer(snapshot.admission, bucket)
                self.internal_errors += 1
                reset_on_close(fd)
                close(fd)
                continue
            self.start(conn)

    cdef Conn *new_conn(self, Listener *snapshot, int fd, sockaddr_storage *peer, socklen_t length,
                        uint32_t bucket) noexcept:
        cdef uint32_t slot
        cdef Conn *conn
        cdef uint32_t generation
        if self.free_count:
            self.free_count -= 1
            slot = self.free_slots[self.free_count]
        elif self.high_water < self.capacity and self.high_water < 0xFFFFFF:
            slot = self.high_water
            self.high_water += 1
        else:
            return NULL
        conn = &self.conns[slot]
        generation = conn.generation + 1
        if generation == 0:
            generation = 1
        memset(conn, 0, sizeof(Conn))
        conn.generation = generation
        conn.state = AWAIT_DATA
        conn.client = fd
        conn.backend = -1
        conn.target = -1
        conn.listener = snapshot
        snapshot.refs += 1
        conn.source_bucket = bucket
        memcpy(&conn.peer, peer, length)
        conn.last_active = self.now
        self.id_sequence += 1
        conn.id = self.id_prefix | self.id_sequence
        conn.c2b.pipe_read = conn.c2b.pipe_write = conn.b2c.pipe_read = conn.b2c.pipe_write = -1
        self.open_connections += 1
        if not snapshot.members_count:  # a group counts a connection only if it never reaches a member
            self.listener_counters[snapshot.row * L_COLUMNS + L_ACCEPTED] += 1
        self.listener_counters[snapshot.row * L_COLUMNS + L_ACTIVE] += 1
        return conn

    cdef inline uint32_t slot_of(self, Conn *conn) noexcept:
        return <uint32_t>(conn - self.conns)

    cdef bint add_fd(self, Conn *conn, int fd, int kind) noexcept:
        cdef epoll_event event
        event.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT | EPOLLET
        event.data.u64 = tag(self.slot_of(conn), conn.generation, conn.attempt, kind)
        return epoll_ctl(self.epoll, EPOLL_CTL_ADD, fd, &event) == 0

    # ==== AWAIT_DATA =============================================================================

    cdef void start(self, Conn *conn) noexcept:
        cdef Listener *listener = conn.listener
        if not self.add_fd(conn, conn.client, TAG_CLIENT):
            self.internal_errors += 1
            self.close_conn(conn, True)
            return
        if listener.server_speaks_first:
            self.connect_next(conn)
            return
        self.read_first_bytes(conn)
        if conn.state == AWAIT_DATA and conn.deadline == 0:  # only clients slow to speak need a timer
            self.set_deadline(conn, self.now + min(listener.first_data_timeout, listener.idle_timeout))

    cdef bint take_buffer(self, Conn *conn) noexcept:
        if conn.buffer != NULL:
            return True
        if self.buffers_count:
            self.buffers_count -= 1
            conn.buffer = self.buffers[self.buffers_count]
        else:
            conn.buffer = <char *>malloc(PROXY_HEADER_MAX + FIRST_BYTES)
            if conn.buffer == NULL:
                return False
        conn.buffer_size = PROXY_HEADER_MAX + FIRST_BYTES
        return True

    cdef void give_back_buffer(self, Conn *conn) noexcept:
        if conn.buffer == NULL:
            return
        if conn.buffer_size == PROXY_HEADER_MAX + FIRST_BYTES and self.buffers_count < BUFFER_POOL:
            self.buffers[self.buffers_count] = conn.buffer
            self.buffers_count += 1
        else:
            free(conn.buffer)
        conn.buffer = NULL
        conn.buffer_size = 0
        conn.first_length = 0

    cdef void read_first_bytes(self, Conn *conn) noexcept:
        cdef ssize_t got
        cdef int hello
        cdef Py_ssize_t name_length = 0
        cdef double hello_deadline
        cdef Listener *listener = conn.listener
        if not self.take_buffer(conn):
            self.internal_errors += 1
            self.close_conn(conn, True)
            return
        got = recv(conn.client, conn.buffer + PROXY_HEADER_MAX + conn.first_length,
                   FIRST_BYTES - conn.first_length, 0)
        if got < 0:
            if errno != EAGAIN:
                self.close_conn(conn, True)
            return
        if got == 0:
            self.close_conn(conn, False)  # connected and left without a byte: no backend was bothered
            return
        conn.first_length += got
        if conn.first_length == FIRST_BYTES:
            # a full read can leave bytes whose edge is spent: the relay must read them unasked
            conn.client_events |= EPOLLIN
        if listener.members_count or (listener.proxy == 2 and listener.sni_authority):
            hello = peek_hello(<uint8_t *>conn.buffer + PROXY_HEADER_MAX, conn.first_length,
                               conn.authority, &name_length)
            if hello == HELLO_INCOMPLETE:
                hello_deadline = self.now + listener.client_hello_wait
                if not conn.hello_partial and (conn.deadline == 0 or hello_deadline < conn.deadline):
                    self.set_deadline(conn, hello_deadline)  # a partial ClientHello gets a shorter wait
                conn.hello_partial = True
                return
            conn.authority_length = name_length if hello == HELLO_SNI else 0
        self.connect_next(conn)

    cdef bint whole_client_hello(self, Conn *conn) noexcept:
        cdef const uint8_t *head = <uint8_t *>conn.buffer + PROXY_HEADER_MAX
        cdef Py_ssize_t length = conn.first_length
        cdef char name[SNI_MAX + 1]
        cdef Py_ssize_t name_length
        if conn.buffer == NULL or length < 5:
            return False
        if length < 5 + ((<Py_ssize_t>head[3] << 8) | head[4]):
            return False
        return peek_hello(head, length, name, &name_length) != HELLO_NOT_TLS

    # ==== routing (a sharing group's socket) ======================================================

    cdef bint route(self, Conn *conn) noexcept:
        """Hand a connection of a group's socket to the member its SNI names (``route_of``); from
        here on it lives on the member's snapshot (backends, limits, PROXY, counters). No member:
        a reset, counted as ``no_route`` on the group. A member's limits refusing it: a reset,
        counted on the member under the limit's reason. False when the connection was closed."""
        cdef Listener *group = conn.listener
        cdef Listener *member
        cdef uint32_t bucket
        cdef int index, refused
        index = route_of(group.routes, group.routes_count, conn.authority, conn.authority_length,
                         group.default_member)
        if index < 0:
            self.listener_counters[group.row * L_COLUMNS + L_REJECTED + REJECT_NO_ROUTE] += 1
            self.close_conn(conn, True)
            return False
        member = group.members[index]
        # The group's slots go back first: a source's open connections are counted PoP-wide (the
        # source key names no listener), so holding them would count this connection twice.
        release_peer(group.admission, conn.source_bucket)
        conn.slots_released = True
        refused = admit_peer(member.admission, <sockaddr *>&conn.peer, self.now, &bucket)
        if refused:
            self.listener_counters[member.row * L_COLUMNS + L_REJECTED + refused - 1] += 1
            memcpy(&self.last_refused[member.row * 6 + refused - 1], &conn.peer, sizeof(sockaddr_storage))
            self.close_conn(conn, True)
            return False
        conn.slots_released = False
        conn.source_bucket = bucket
        self.listener_counters[group.row * L_COLUMNS + L_ACTIVE] -= 1
        self.listener_counters[member.row * L_COLUMNS + L_ACCEPTED] += 1
        self.listener_counters[member.row * L_COLUMNS + L_ACTIVE] += 1
        member.refs += 1
        conn.listener = member
        self.unref(group)
        if not (member.proxy == 2 and member.sni_authority):
            conn.authority_length = 0  # the member does not pass the SNI on
        return True

    # ==== CONNECTING ===========================================================================

    cdef void connect_next(self, Conn *conn) noexcept:
        cdef Listener *listener = conn.listener
        cdef uint8_t key[16]
        cdef int key_length, index, fd, one = 1, code, started
        cdef bint fast
        cdef Backend *backend
        cdef int64_t *counters = &self.listener_counters[listener.row * L_COLUMNS]
        if conn.state == AWAIT_DATA:
            if listener.members_count:
                if not self.route(conn):
                    return
                listener = conn.listener
                counters = &self.listener_counters[listener.row * L_COLUMNS]
            conn.state = CONNECTING
            conn.hello_partial = False
            if listener.backends_count:
                key_length = client_key(<sockaddr *>&conn.peer, key)
                conn.candidates_count = candidates(
                    listener.maglev, key, key_length, listener.retries + 1, listener.skip, conn.candidates
                )
            if conn.candidates_count <= 0:
                counters[L_REJECTED + REJECT_NO_BACKEND] += 1
                self.close_conn(conn, True)
                return
        while conn.next_candidate < conn.candidates_count:
            index = conn.candidates[conn.next_candidate]
            conn.next_candidate += 1
            if conn.target >= 0:
                counters[L_RETRIES] += 1  # every attempt after the first is a retry
            backend = &listener.backends[index]
            conn.target = index
            fd = socket(backend.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            if fd < 0:
                code = errno
            else:
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
                # (with nothing to send, a deferred connect would never send its SYN)
                fast = listener.fast_open and (listener.proxy != 0 or conn.first_length != 0)
                if fast:
                    setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one))
                conn.connect_started = monotonic()
                conn.fast_opened = False
                started = connect(fd, <sockaddr *>&backend.address, backend.address_length)
                if started == 0 or errno == EINPROGRESS:
                    conn.backend = fd
                    conn.attempt += 1
                    if not self.add_fd(conn, fd, TAG_BACKEND):
                        close(fd)
                        conn.backend = -1
                        self.internal_errors += 1
                        self.close_conn(conn, True)
                        return
                    if started == 0 and fast:
                        # a cookie is cached: the SYN leaves with our first send. A refusal then
                        # shows up in the relay (ECONNREFUSED), a lost SYN at connect_timeout
                        # (on_timer); pump and fast_open_timed_out turn them into retries.
                        conn.fast_opened = True
                        self.connected(conn)
                        return
                    self.set_deadline(conn, self.now + listener.connect_timeout)
                    return
                code = errno
                close(fd)
            self.count_connect_error(conn, connect_error(code))
        counters[L_REJECTED + REJECT_BACKENDS_FAILED] += 1
        self.close_conn(conn, True)

    cdef void count_connect_error(self, Conn *conn, int reason) noexcept:
        """A connect to the conn's target failed: count it, tell the health process, maybe eject here."""
        cdef Listener *listener = conn.listener
        cdef Backend *backend = &listener.backends[conn.target]
        cdef const char *text = _ERROR_TEXT[reason]
        self.target_counters[backend.target * T_COLUMNS + T_ERRORS + reason] += 1
        if listener.passive_fall == 0:
            return
        if listener.passive_fall == 1 and listener.current:
            backend.local_down = 1
            backend.local_since = monotonic()
            self.refresh_skip(listener)
        if self.reports >= 0:
            memcpy(backend.report + backend.report_length, text, strlen(text))
            # the health process is busy or being replaced if this fails; its probes will see it too
            send(self.reports, backend.report, backend.report_length + strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL)

    cdef void connect_failed(self, Conn *conn, int reason) noexcept:
        self.count_connect_error(conn, reason)
        close(conn.backend)  # closing the only reference also removes it from epoll
        conn.backend = -1
        self.connect_next(conn)

    cdef void connected(self, Conn *conn) noexcept:
        cdef Listener *listener = conn.listener
        cdef Backend *backend = &listener.backends[conn.target]
        cdef int64_t *target = &self.target_counters[backend.target * T_COLUMNS]
        cdef double seconds = monotonic() - conn.connect_started
        cdef int bucket = 0, code
        cdef char header[PROXY_HEADER_MAX]
        cdef Py_ssize_t header_length = 0, payload_length, first_sent
        cdef ssize_t sent = 0
        cdef sockaddr_storage local
        cdef socklen_t local_length
        cdef const sockaddr *destination
        cdef char *payload
        cdef char *copy
        if listener.proxy:
            if listener.has_destination:
                destination = <sockaddr *>&listener.destination
            else:
                local_length = sizeof(local)
                getsockname(conn.client, <sockaddr *>&local, &local_length)
                destination = <sockaddr *>&local
            if listener.proxy == 1:
                header_length = proxy_v1(header, PROXY_HEADER_MAX, <sockaddr *>&conn.peer, destination)
            else:
                header_length = proxy_v2(header, PROXY_HEADER_MAX, <sockaddr *>&conn.peer, destination,
                                         conn.id, conn.authority, conn.authority_length)
            if header_length < 0:
                self.internal_errors += 1
                self.close_conn(conn, True)
                return
        if conn.buffer == NULL and header_length:
            if not self.take_buffer(conn):
                self.close_conn(conn, True)
                return
        payload_length = header_length + conn.first_length
        if payload_length:
            payload = conn.buffer + PROXY_HEADER_MAX - header_length
            memcpy(payload, header, header_length)
            sent = send(conn.backend, payload, payload_length, MSG_NOSIGNAL)
            if sent < 0:
                code = errno
                if conn.fast_opened and (code == EINPROGRESS or code == EAGAIN):
                    # the kernel sent a plain SYN after all (no room for data in it): nothing of
                    # ours left, so this is an ordinary connect; EPOLLOUT brings us back here
                    conn.fast_opened = False
                    self.set_deadline(conn, self.now + listener.connect_timeout)
                    return
                if code == EAGAIN:
                    sent = 0
                else:
                    # nothing reached the node: try the next one
                    self.connect_failed(conn, ERR_REFUSED if code == ECONNREFUSED else ERR_RESET)
                    return
        if not conn.fast_opened:  # a fast open has no handshake behind it yet: nothing to time
            while bucket < 14 and seconds > _CONNECT_BOUNDS[bucket]:
                bucket += 1
            target[T_BUCKETS + bucket] += 1
            target[T_SUM_NS] += <int64_t>(seconds * 1e9)
        target[T_CONNECTIONS] += 1
        target[T_ACTIVE] += 1
        if conn.fast_opened:
            # connect_timeout still applies: until the node answers the SYN, on_timer checks it
            self.set_deadline(conn, self.now + listener.connect_timeout)
        else:
            conn.deadline = 0
        # Count each of the client's first bytes once, when it first leaves: a replay counts only
        # what earlier attempts did not send, and the part of a short send still to go (header
        # and first bytes) is taken out of the flow's count when it moves (skip_counting).
        first_sent = sent - header_length if sent > header_length else 0
        if first_sent > conn.first_counted:
            self.listener_counters[listener.row * L_COLUMNS + L_BYTES_IN] += first_sent - conn.first_counted
        conn.skip_counting = header_length - sent if sent < header_length else 0
        if conn.first_counted > first_sent:
            conn.skip_counting += conn.first_counted - first_sent
        else:
            conn.first_counted = first_sent
        conn.state = RELAY
        self.init_flow(&conn.c2b, conn.client, conn.backend)
        self.init_flow(&conn.b2c, conn.backend, conn.client)
        # Replayable while the first bytes are all the node may have: a reset before it answers
        # replays them (retry_on_reset). A fast open may also be refused (a reset of the SYN):
        # then nothing reached the node, whatever the SYN carried and whatever waits behind it.
        conn.replayable = (
            (listener.retry_on_reset or conn.fast_opened)
            and (sent == payload_length or conn.fast_opened)
            and conn.next_candidate < conn.candidates_count
        )
        conn.primed_first = False
        if sent < payload_length:
            # rare without fast open: the first write did not fit the send buffer; with it, the
            # rest of what the SYN had no room for. Either way it goes first in c2b.
            if not self.prime(&conn.c2b, payload + sent, payload_length - sent):
                self.close_conn(conn, True)
                return
            conn.primed_first = conn.fast_opened
            if not conn.replayable:
                self.give_back_buffer(conn)
            self.pump(conn, 0)
            return
        if conn.replayable:
            # keep only the first bytes (an exact-size copy), with room for the header in front
            if conn.buffer_size > PROXY_HEADER_MAX + conn.first_length:
                copy = <char *>malloc(PROXY_HEADER_MAX + conn.first_length)
                if copy != NULL:
                    memcpy(copy + PROXY_HEADER_MAX, conn.buffer + PROXY_HEADER_MAX, conn.first_length)
                    payload_length = conn.first_length
                    self.give_back_buffer(conn)
                    conn.buffer = copy
                    conn.buffer_size = PROXY_HEADER_MAX + payload_length
                    conn.first_length = payload_length
        else:
            self.give_back_buffer(conn)
        if conn.client_events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP):
            conn.c2b.peer_closed = (conn.client_events & (EPOLLRDHUP | EPOLLHUP)) != 0
            self.pump(conn, 0)  # bytes (or a FIN) came while we were connecting; their edge is gone

    cdef void init_flow(self, Flow *flow, int src, int dst) noexcept:
        flow.src = src
        flow.dst = dst
        flow.state = WANT_READ
        flow.done = False
        flow.peer_closed = False
        flow.bulk = False
        flow.splice = self.relay == RELAY_SPLICE
        flow.moved = 0
        flow.left = NULL
        flow.left_at = flow.left_length = 0
        flow.pipe_read = flow.pipe_write = -1
        flow.pending = 0

    # ==== events on a connection ===================================================================

    cdef void on_client(self, Conn *conn, uint32_t events) noexcept:
        if conn.state == RELAY:
            self.relay_event(conn, events, 0)
        elif conn.state == AWAIT_DATA:
            conn.client_events |= events & (EPOLLRDHUP | EPOLLHUP)  # a FIN behind the first bytes raises no new edge
            if events & EPOLLERR:
                self.close_conn(conn, True)
            elif events & (EPOLLIN | EPOLLRDHUP):
                self.read_first_bytes(conn)
        elif conn.state == CONNECTING:
            if events & EPOLLERR:
                self.close_conn(conn, True)  # the client gave up while we were connecting
            else:
                conn.client_events |= events

    cdef void on_backend(self, Conn *conn, uint32_t events) noexcept:
        cdef int code = 0
        cdef socklen_t length = sizeof(code)
        if conn.state == RELAY:
            self.relay_event(conn, events, 1)
        elif conn.state == CONNECTING:
            if events & (EPOLLERR | EPOLLHUP):
                getsockopt(conn.backend, SOL_SOCKET, SO_ERROR, &code, &length)
                self.connect_failed(conn, connect_error(code))
            elif events & EPOLLOUT:
                self.connected(conn)

    cdef void relay_event(self, Conn *conn, uint32_t events, int from_backend) noexcept:
        """An edge on one socket: the flow reading from it takes bytes, the one writing to it sends."""
        cdef Flow *reading = &conn.b2c if from_backend else &conn.c2b
        cdef Flow *writing = &conn.c2b if from_backend else &conn.b2c
        cdef uint32_t generation = conn.generation, attempt = conn.attempt
        if events & (EPOLLRDHUP | EPOLLHUP):
            reading.peer_closed = True
        if events & (EPOLLERR | EPOLLHUP):
            # read what is left (EOF or the error), then give up on writing to it
            if not reading.done:
                self.pump(conn, from_backend)
            # (a replay in that pump may be relaying again at once, to another node, by fast open:
            # hence the attempt, not only the state)
            if (
                conn.generation == generation and conn.attempt == attempt and conn.state == RELAY
                and not writing.done
            ):
                self.close_conn(conn, True)
            return
        if events & EPOLLIN and reading.state != WANT_WRITE:
            self.pump(conn, from_backend)  # a flow waiting for its destination is pumped by that one's OUT edge
        if (
            events & EPOLLOUT and conn.generation == generation and conn.attempt == attempt
            and conn.state == RELAY and writing.state == WANT_WRITE
        ):
            self.pump(conn, 1 - from_backend)

    cdef void on_timer(self, Conn *conn, double deadline) noexcept:
        cdef uint8_t state = 0
        cdef socklen_t length = 1
        if deadline != conn.deadline or conn.state == CLOSED:
            return  # stale: the deadline moved on
        if conn.state == RELAY:
            # only a fast open relays before its handshake; still unanswered: the connect timed out
            if conn.fast_opened and getsockopt(conn.backend, IPPROTO_TCP, TCP_INFO, &state, &length) == 0:
                if state == TCP_SYN_SENT:
                    self.fast_open_timed_out(conn)
            return
        if conn.state == AWAIT_DATA:
            if conn.hello_partial:
                self.connect_next(conn)  # partial ClientHello: go without SNI rather than wait longer
            else:
                self.listener_counters[conn.listener.row * L_COLUMNS + L_IDLE_CLOSED] += 1
                self.close_conn(conn, False)
        else:
            close(conn.backend)
            conn.backend = -1
            self.count_connect_error(conn, ERR_TIMEOUT)
            self.connect_next(conn)

    cdef void fast_open_timed_out(self, Conn *conn) noexcept:
        """A fast open's SYN went unanswered for ``connect_timeout``. It carried the first bytes, and a
        node whose answer was lost may have read them: so the next candidate gets them only under
        ``retry_on_reset``; otherwise the client is reset, as for a node that reset before answering."""
        if conn.replayable and conn.listener.retry_on_reset:
            self.replay(conn, ERR_TIMEOUT)
            return
        self.fast_open_failed(conn, ERR_TIMEOUT)

    cdef void fast_open_failed(self, Conn *conn, int reason) noexcept:
        """A fast open's connect failed and its first bytes go nowhere else: count it as a failed
        connect (and the connection as refused if no candidate was left), reset the client."""
        self.count_connect_error(conn, reason)
        if conn.next_candidate >= conn.candidates_count:
            self.listener_counters[conn.listener.row * L_COLUMNS + L_REJECTED + REJECT_BACKENDS_FAILED] += 1
        self.close_conn(conn, True)

    # ==== RELAY ===================================================================================

    cdef void pump(self, Conn *conn, int which) noexcept:
        """Move a flow's bytes (``which``: 0 client → backend, 1 backend → client)."""
        cdef Flow *flow = &conn.b2c if which else &conn.c2b
        cdef int64_t before = flow.moved
        cdef int result, code
        if flow.done:
            return
        result = self.pump_splice(flow) if flow.splice else self.pump_copy(flow)
        if result == FAILED:
            code = errno
            if code == ECONNREFUSED and conn.fast_opened:
                # the node refused our fast open's SYN: a refused connect, whatever the SYN carried
                # (c2b may be the one to see it, sending the rest of the first bytes: then it has
                # not read from the client yet)
                if conn.replayable and (which == 1 or (conn.primed_first and flow.moved == before)):
                    self.replay(conn, ERR_REFUSED)
                else:
                    self.fast_open_failed(conn, ERR_REFUSED)
                return
            if conn.replayable and which == 1 and conn.listener.retry_on_reset:
                self.replay(conn, ERR_RESET)
                return
            self.close_conn(conn, True)
            return
        if conn.replayable and (which == 0 or flow.moved != before):
            if which == 0 and conn.primed_first and flow.moved == before:
                pass  # only the rest of the first send, still waiting for the handshake: not the client
            else:
                conn.replayable = False  # the client spoke again or the node answered: no replay any more
                self.give_back_buffer(conn)
        if (result == WANT_READ or result == MORE) and not flow.splice and flow.bulk and self.relay == RELAY_AUTO:
            flow.splice = True  # bulk data: zero copy from now on (the copy buffer is empty here)
        if result == MORE:
            self.pump_later(conn, which)  # its turn is over; others first, then more bytes
            return
        if result == DONE and not flow.done:
            if (
                conn.replayable and which == 1 and conn.listener.retry_on_reset
                and self.whole_client_hello(conn)
            ):
                self.replay(conn, ERR_RESET)  # closed before its ServerHello: no handshake, nothing processed
                return
            flow.done = True
            if conn.c2b.done and conn.b2c.done:
                self.close_conn(conn, False)  # close() sends the FIN
                return
            shutdown(flow.dst, SHUT_WR)  # half-close: the other direction stays open

    cdef void pump_later(self, Conn *conn, int which) noexcept:
        cdef void *grown
        if self.again_count == self.again_capacity:
            grown = realloc(self.again, 2 * self.again_capacity * sizeof(Again))
            if grown == NULL:
                return  # the flow waits for its next edge instead
            self.again = <Again *>grown
            self.again_capacity *= 2
        self.again[self.again_count].slot = self.slot_of(conn)
        self.again[self.again_count].generation = conn.generation
        self.again[self.again_count].which = which
        self.again_count += 1

    cdef void pump_again(self) noexcept:
        cdef uint32_t count = self.again_count, index
        cdef Again *batch = <Again *>malloc(count * sizeof(Again))
        cdef Conn *conn
        if batch == NULL:
            return
        memcpy(batch, self.again, count * sizeof(Again))
        self.again_count = 0
        for index in range(count):
            conn = &self.conns[batch[index].slot]
            if conn.generation == batch[index].generation and conn.state == RELAY:
                self.pump(conn, batch[index].which)
        free(batch)

    cdef int pump_copy(self, Flow *flow) noexcept:
        """Copy: recv into the worker's scratch buffer and send; only what dst refused is copied aside."""
        cdef int64_t moved = 0
        cdef ssize_t count, sent, done
        cdef int state = MORE, rounds
        if flow.left != NULL:
            while flow.left_at < flow.left_length:
                sent = send(flow.dst, flow.left + flow.left_at, flow.left_length - flow.left_at, MSG_NOSIGNAL)
                if sent < 0:
                    flow.moved += moved
                    if errno == EAGAIN:
                        flow.state = WANT_WRITE
                        return WANT_WRITE
                    return FAILED
                flow.left_at += sent
                moved += sent
            free(flow.left)
            flow.left = NULL
        for rounds in range(MAX_ROUNDS):
            count = recv(flow.src, self.scratch, self.scratch_size, 0)
            if count < 0:
                if errno == EAGAIN:
                    state = WANT_READ
                    break
                flow.moved += moved
                return FAILED
            if count == 0:
                state = DONE
                break
            done = 0
            while done < count:
                sent = send(flow.dst, self.scratch + done, count - done, MSG_NOSIGNAL)
                if sent < 0:
                    if errno == EAGAIN:
                        break
                    flow.moved += moved + done
                    return FAILED
                done += sent
            moved += done
            if done < count:
                flow.left = <char *>malloc(count - done)
                if flow.left == NULL:
                    flow.moved += moved
                    return FAILED
                memcpy(flow.left, self.scratch + done, count - done)
                flow.left_at = 0
                flow.left_length = count - done
                state = WANT_WRITE
                break
            if count < self.scratch_size and not flow.peer_closed:
                state = WANT_READ  # a short TCP read emptied the receive queue; new bytes raise an edge
                break
            flow.bulk = True
        flow.moved += moved
        flow.state = state
        return state

    cdef int pump_splice(self, Flow *flow) noexcept:
        """Splice: socket → pooled pipe → socket, never through user space; a drained pipe goes back at once."""
        cdef int64_t moved = 0
        cdef ssize_t got
        cdef int state = MORE, rounds
        cdef Py_ssize_t pending = flow.pending
        if flow.pipe_read < 0 and not self.take_pipe(flow):
            return FAILED
        for rounds in range(MAX_ROUNDS):
            if not pending:
                got = splice(flow.src, NULL, flow.pipe_write, NULL, self.pipe_size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                if got < 0:
                    if errno == EAGAIN:
                        state = WANT_READ
                        break
                    flow.pending = pending
                    flow.moved += moved
                    return FAILED
                if got == 0:
                    state = DONE
                    break
                pending = got
            # no "short read means empty" shortcut: a splice also stops short when the pipe is full
            while pending:
                got = splice(flow.pipe_read, NULL, flow.dst, NULL, pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                if got < 0:
                    break
                pending -= got
                moved += got
            if pending:
                if errno == EAGAIN:
                    state = WANT_WRITE
                    break
                flow.pending = pending
                flow.moved += moved
                return FAILED
        if pending:
            state = WANT_WRITE
        else:
            self.give_back_pipe(flow)  # idle connections hold no pipe
        flow.pending = pending
        flow.moved += moved
        flow.state = state
        return state

    cdef bint take_pipe(self, Flow *flow) noexcept:
        cdef int fds[2]
        if self.pipes_count:
            self.pipes_count -= 1
            flow.pipe_read = self.pipes[2 * self.pipes_count]
            flow.pipe_write = self.pipes[2 * self.pipes_count + 1]
            return True
        if pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0:
            return False
        fcntl(fds[1], F_SETPIPE_SZ, <int>self.pipe_size)  # over pipe-max-size: a default pipe still works
        flow.pipe_read, flow.pipe_write = fds[0], fds[1]
        return True

    cdef void give_back_pipe(self, Flow *flow) noexcept:
        if flow.pipe_read < 0:
            return
        if flow.pending == 0 and self.pipes_count < 256:
            self.pipes[2 * self.pipes_count] = flow.pipe_read
            self.pipes[2 * self.pipes_count + 1] = flow.pipe_write
            self.pipes_count += 1
        else:
            close(flow.pipe_read)
            close(flow.pipe_write)
        flow.pipe_read = flow.pipe_write = -1

    cdef bint prime(self, Flow *flow, const char *data, Py_ssize_t length) noexcept:
        """Queue bytes that must reach dst before anything read from src (a partly sent first write)."""
        cdef ssize_t written
        if flow.splice:
            if not self.take_pipe(flow):
                return False
            written = write_all(flow.pipe_write, data, length)  # a fresh pipe holds >= 64 KiB
            if written < length:
                return False
            flow.pending = written
        else:
            flow.left = <char *>malloc(length)
            if flow.left == NULL:
                return False
            memcpy(flow.left, data, length)
            flow.left_at = 0
            flow.left_length = length
        flow.state = WANT_WRITE
        return True

    cdef void replay(self, Conn *conn, int reason) noexcept:
        """The node reset us before answering (or refused or ignored a fast open's SYN): send the first
        bytes to the next candidate; ``reason`` is the connect error it counts as."""
        cdef Backend *backend = &conn.listener.backends[conn.target]
        self.target_counters[backend.target * T_COLUMNS + T_ACTIVE] -= 1
        self.release_flow(&conn.c2b)
        self.release_flow(&conn.b2c)
        conn.replayable = False
        conn.client_events = 0
        conn.state = CONNECTING
        self.connect_failed(conn, reason)

    cdef void release_flow(self, Flow *flow) noexcept:
        if flow.left != NULL:
            free(flow.left)
            flow.left = NULL
        self.give_back_pipe(flow)

    cdef void harvest(self, Conn *conn) noexcept:
        """Move byte counts into the listener's counters (on close and once a second)."""
        cdef int64_t *counters = &self.listener_counters[conn.listener.row * L_COLUMNS]
        cdef int64_t moved = conn.c2b.moved, skipped
        if conn.state < RELAY and conn.c2b.moved == 0 and conn.b2c.moved == 0:
            return
        if conn.skip_counting:  # the rest of a short first send comes out of the flow first
            skipped = min(moved, conn.skip_counting)
            conn.skip_counting -= skipped
            moved -= skipped
        counters[L_BYTES_IN] += moved
        conn.c2b.moved = 0
        counters[L_BYTES_OUT] += conn.b2c.moved
        conn.b2c.moved = 0

    # ==== timers ==================================================================================

    cdef void set_deadline(self, Conn *conn, double deadline) noexcept:
        """A binary heap with lazy cancellation: a timer whose deadline is no longer the conn's is ignored."""
        cdef void *grown
        cdef uint32_t child, parent
        cdef Timer timer
        conn.deadline = deadline
        if self.timers_count == self.timers_capacity:
            grown = realloc(self.timers, 2 * self.timers_capacity * sizeof(Timer))
            if grown == NULL:
                self.internal_errors += 1
                return
            self.timers = <Timer *>grown
            self.timers_capacity *= 2
        timer.deadline = deadline
        timer.slot = self.slot_of(conn)
        timer.generation = conn.generation
        child = self.timers_count
        self.timers_count += 1
        while child:
            parent = (child - 1) >> 1
            if self.timers[parent].deadline <= deadline:
                break
            self.timers[child] = self.timers[parent]
            child = parent
        self.timers[child] = timer

    cdef void expire(self) noexcept:
        cdef Timer top, last
        cdef uint32_t index, child, count
        cdef Conn *conn
        while self.timers_count and self.timers[0].deadline <= self.now:
            top = self.timers[0]
            self.timers_count -= 1
            count = self.timers_count
            if count:
                last = self.timers[count]
                index = 0
                while True:
                    child = 2 * index + 1
                    if child >= count:
                        break
                    if child + 1 < count and self.timers[child + 1].deadline < self.timers[child].deadline:
                        child += 1
                    if self.timers[child].deadline >= last.deadline:
                        break
                    self.timers[index] = self.timers[child]
                    index = child
                self.timers[index] = last
            conn = &self.conns[top.slot]
            if conn.generation == top.generation and conn.state != CLOSED:
                self.on_timer(conn, top.deadline)

    # ==== close ===================================================================================

    cdef void close_conn(self, Conn *conn, bint reset) noexcept:
        """Close both sides; with ``reset`` send RST so a failure is never mistaken for a clean end."""
        cdef Listener *listener = conn.listener
        cdef uint32_t slot
        if conn.state == CLOSED:
            return
        cdef bint was_relaying = conn.state == RELAY
        self.harvest(conn)
        conn.state = CLOSED
        self.release_flow(&conn.c2b)
        self.release_flow(&conn.b2c)
        if conn.client >= 0:
            if reset:
                reset_on_close(conn.client)
            close(conn.client)  # closing the only reference also removes it from epoll
            conn.client = -1
        if conn.backend >= 0:
            if reset:
                reset_on_close(conn.backend)
            close(conn.backend)
            conn.backend = -1
        if was_relaying and conn.target >= 0:
            self.target_counters[listener.backends[conn.target].target * T_COLUMNS + T_ACTIVE] -= 1
        self.give_back_buffer(conn)
        self.listener_counters[listener.row * L_COLUMNS + L_ACTIVE] -= 1
        if listener.members_count:  # closed before it was routed (refused, silent, gone)
            self.listener_counters[listener.row * L_COLUMNS + L_ACCEPTED] += 1
            if not conn.slots_released:
                release_peer(listener.admission, conn.source_bucket)
        else:
            release_peer(listener.admission, conn.source_bucket)
        self.unref(listener)
        conn.listener = NULL
        self.open_connections -= 1
        slot = self.slot_of(conn)
        self.free_slots[self.free_count] = slot
        self.free_count += 1


cdef ssize_t write_all(int fd, const char *data, Py_ssize_t length) noexcept nogil:
    cdef ssize_t written, total = 0
    while total < length:
        written = write(fd, data + total, length - total)
        if written <= 0:
            break
        total += written
    return total


cdef extern from "<unistd.h>" nogil:
    ssize_t write(int fd, const void *buf, size_t n)

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)


cdef socklen_t _fill_address(sockaddr_storage *address, str host, int port) except 0:
    """A sockaddr for a (host, port) the config already validated."""
    cdef sockaddr_in *v4 = <sockaddr_in *>address
    cdef sockaddr_in6 *v6 = <sockaddr_in6 *>address
    cdef bytes text = host.encode("ascii")
    memset(address, 0, sizeof(sockaddr_storage))
    if ":" in host:
        v6.sin6_family = AF_INET6
        v6.sin6_port = htons(port)
        if inet_pton(AF_INET6, text, &v6.sin6_addr) != 1:
            raise ValueError(f"not an IPv6 address: {host!r}")
        return sizeof(sockaddr_in6)
    v4.sin_family = AF_INET
    v4.sin_port = htons(port)
    if inet_pton(AF_INET, text, &v4.sin_addr) != 1:
        raise ValueError(f"not an IPv4 address: {host!r}")
    return sizeof(sockaddr_in)


cdef str _address_text(const sockaddr *address):
    cdef char text[64]
    if address.sa_family == AF_INET:
        inet_ntop(AF_INET, &(<sockaddr_in *>address).sin_addr, text, sizeof(text))
    elif address.sa_family == AF_INET6:
        inet_ntop(AF_INET6, &(<sockaddr_in6 *>address).sin6_addr, text, sizeof(text))
    else:
        return ""
    return text.decode("ascii")
