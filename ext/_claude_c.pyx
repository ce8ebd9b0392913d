# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled reader of Claude Code's JSONL logs: tokline.engine._claude_c.

``scan`` and ``scan_deferred`` (with its ``Pending``) find the usage lines of a buffer and
read them into records; ``parse_iso_ms`` is the scanner's ISO time parser for the sources
that decode their JSON themselves.  The pure-Python twin is tokline/engine/_claude_py.py:
same signatures, same results (tests/test_scan_differential.py holds them to it).  Only
lines that contain the bytes ``"usage":{`` are parsed; each of them is parsed structurally
and validated as JSON, so a ``"usage"`` inside a string value never counts.

A line whose interpreted keys or values use backslash escapes is rare in real logs; it
is handed back as ``SLOW`` and the twin's json.loads path decodes it, which keeps this
file small without giving up exactness.  The JSON skipping, ISO times and byte searches
it shares with the Codex reader are ``cdef inline`` in ext/*.pxd.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_SetFromErrnoWithFilenameObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport floor
from libc.stdint cimport int64_t, uint32_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, strtod
from libc.string cimport memchr, memcmp, memcpy

from _bytesearch cimport grow, tl_memmem, tl_memrchr
from _rows cimport (
    FNV_OFFSET, ROW_VALUES, V_CACHE_1H, V_CACHE_5M, V_CACHE_READ, V_COST, V_COST_CALC, V_CTX,
    V_FLAGS, V_INPUT, V_KEY, V_OUTPUT, V_PRICED, V_TS, V_WEB_SEARCH, fnv1a, pack_key, tl_row,
)
from _isotime cimport parse_iso_ms as iso_to_ms
from _jsonskip cimport (
    R_SLOW, Span, field_fn, key_is, parse_object, skip_number, skip_value, skip_ws,
    string_field,
)

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


from os import fsencode as os_fsencode

cdef object _slow_decoder = None
cdef object _latest_ms = None


cdef object decode_slow_line(bytes line, Py_ssize_t offset, int64_t latest):
    # Imported on first use: the twin pulls in json and re, which the no-change
    # refresh path (manifest_unchanged) must not pay for.
    global _slow_decoder
    if _slow_decoder is None:
        from tokline.engine._claude_py import decode_slow_line as decoder
        _slow_decoder = decoder
    return _slow_decoder(line, offset, latest)


cdef int64_t default_latest() except? -1:
    """tokline/engine/validate.py latest_ms(): the latest valid time when none is given."""
    global _latest_ms
    if _latest_ms is None:
        from tokline.engine.validate import latest_ms
        _latest_ms = latest_ms
    return _latest_ms()



cdef extern from *:
    """
    /* `"usage"` then optional blanks, ':', optional blanks, '{'.  Claude Code writes compact
       JSON; the blanks admit logs re-serialised by other tools. */
    static int tl_usage_tail(const unsigned char *p, const unsigned char *e) {
        while (p < e && (*p == 32 || *p == 9 || *p == 13)) p++;
        if (p >= e || *p != ':') return 0;
        p++;
        while (p < e && (*p == 32 || *p == 9 || *p == 13)) p++;
        return p < e && *p == '{';
    }
    static const unsigned char tl_usage_key[7] = {34, 'u', 's', 'a', 'g', 'e', 34};
    #if defined(__SSE2__) && defined(__GNUC__)
    #include <emmintrin.h>
    /* Compare '"' at i and i+6 sixteen positions at a time (Mula's first/last filter),
       then confirm the middle and the tail; several times faster than memmem here. */
    static const unsigned char *tl_find_usage(const unsigned char *h, size_t n) {
        const unsigned char *e = h + n;
        const __m128i quote = _mm_set1_epi8('"');
        size_t i = 0;
        for (; i + 6 + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(h + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(h + i + 6));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(b, quote)));
            while (mask) {
                unsigned bit = (unsigned)__builtin_ctz(mask);
                const unsigned char *c = h + i + bit;
                if (memcmp(c + 1, tl_usage_key + 1, 5) == 0 && tl_usage_tail(c + 7, e)) return c;
                mask &= mask - 1;
            }
        }
        for (; i + 7 <= n; i++) {
            const unsigned char *c = h + i;
            if (memcmp(c, tl_usage_key, 7) == 0 && tl_usage_tail(c + 7, e)) return c;
        }
        return NULL;
    }
    #else
    static const unsigned char *tl_find_usage(const unsigned char *h, size_t n) {
        const unsigned char *e = h + n;
        while (n >= 7) {
            const unsigned char *c = tl_memmem(h, n, tl_usage_key, 7);
            if (!c) return NULL;
            if (tl_usage_tail(c + 7, e)) return c;
            n -= (size_t)(c + 1 - h);
            h = c + 1;
        }
        return NULL;
    }
    #endif
    """
    const unsigned char *tl_find_usage(const unsigned char *h, size_t n) nogil



# Record flags; the twin defines the same values.  F_SPLIT and F_COST stay internal.
cdef enum:
    F_SIDECHAIN = 1
    F_SPLIT = 2
    F_FAST = 4
    F_COST = 8
    F_API_ERROR = 16
    PUBLIC_FLAGS = 1 | 4 | 16

# parse_line results (and R_SLOW, from _jsonskip)
cdef enum:
    R_MALFORMED = -1
    R_OTHER = 0
    R_USAGE = 1

# The bounds of tokline/engine/validate.py (its LIMITS; tests/test_hostile_input.py holds
# this module's LIMITS to them): a line outside them is malformed.  The latest valid time
# is an argument of scan and scan_deferred.
cdef int64_t TS_MIN_MS = 946684800000  # 2000-01-01T00:00:00Z
cdef int64_t COUNT_LIMIT = 10000000000  # 10**10: a count must be below it
cdef double COST_LIMIT = 1e4  # USD per request: a cost must be below it
LIMITS = {"ts_min_ms": TS_MIN_MS, "count_limit": COUNT_LIMIT, "cost_limit": COST_LIMIT}
cdef int64_t BAD = -1  # a count outside the bounds (a valid one is never negative)


cdef struct Rec:
    Py_ssize_t line_start
    Py_ssize_t line_end
    int kind
    int64_t ts_ms
    Span ts, mid, rid, sid, model, cwd, typ, speed
    int64_t input, output, cc_total, cc5m, cc1h, cache_read, web_search
    double cost
    int cost_bad
    int flags
    int has_message
    int has_usage
    int has_type


cdef int64_t read_tokens(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, bint is_float) noexcept nogil:
    """Token count of a validated JSON number: its value if integral and in
    [0, COUNT_LIMIT), else BAD (validate.count, in C)."""
    cdef int64_t v = 0
    cdef double d
    if not is_float:
        if b[s] == 45:
            return 0 if e - s == 2 and b[s + 1] == 48 else BAD  # -0 is 0
        while s < e:
            v = v * 10 + (b[s] - 48)
            if v >= COUNT_LIMIT:
                return BAD
            s += 1
        return v
    d = strtod(<const char *>(b + s), NULL)
    if not (d >= 0 and d < <double>COUNT_LIMIT) or floor(d) != d:
        return BAD
    return <int64_t>d


cdef Py_ssize_t number_field(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
                             int64_t *out) noexcept nogil:
    """A count: a number as read_tokens reads it, null as 0, anything else BAD."""
    cdef int is_float = 0
    cdef Py_ssize_t q
    out[0] = 0
    if b[p] == 45 or 48 <= b[p] <= 57:
        q = skip_number(b, p, e, &is_float)
        if q < 0:
            return -1
        out[0] = read_tokens(b, p, q, is_float)
        return q
    if b[p] != 110:  # not null
        out[0] = BAD
    return skip_value(b, p, e, 1)


cdef Py_ssize_t on_cache_creation(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                                  Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef Rec *r = <Rec *>st
    if key_is(b, ks, kl, b"ephemeral_5m_input_tokens", 25):
        return number_field(b, p, e, &r.cc5m)
    if key_is(b, ks, kl, b"ephemeral_1h_input_tokens", 25):
        return number_field(b, p, e, &r.cc1h)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t on_server_tool_use(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                                   Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef Rec *r = <Rec *>st
    if key_is(b, ks, kl, b"web_search_requests", 19):
        return number_field(b, p, e, &r.web_search)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t on_usage(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                         Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef Rec *r = <Rec *>st
    if key_is(b, ks, kl, b"input_tokens", 12):
        return number_field(b, p, e, &r.input)
    if key_is(b, ks, kl, b"output_tokens", 13):
        return number_field(b, p, e, &r.output)
    if key_is(b, ks, kl, b"cache_creation_input_tokens", 27):
        return number_field(b, p, e, &r.cc_total)
    if key_is(b, ks, kl, b"cache_read_input_tokens", 23):
        return number_field(b, p, e, &r.cache_read)
    if key_is(b, ks, kl, b"cache_creation", 14):
        r.cc5m = 0
        r.cc1h = 0
        r.flags &= ~F_SPLIT
        if b[p] == 123:
            r.flags |= F_SPLIT
            return parse_object(b, p, e, r, &r.kind, depth + 1, on_cache_creation)
        return skip_value(b, p, e, depth + 1)
    if key_is(b, ks, kl, b"server_tool_use", 15):
        r.web_search = 0
        if b[p] == 123:
            return parse_object(b, p, e, r, &r.kind, depth + 1, on_server_tool_use)
        return skip_value(b, p, e, depth + 1)
    if key_is(b, ks, kl, b"speed", 5):
        return string_field(b, p, e, &r.speed, &r.kind)
    return skip_value(b, p, e, depth + 1)


cdef inline void reset_usage(Rec *r) noexcept nogil:
    r.has_usage = 0
    r.input = 0
    r.output = 0
    r.cc_total = 0
    r.cc5m = 0
    r.cc1h = 0
    r.cache_read = 0
    r.web_search = 0
    r.speed.start = -1
    r.flags &= ~F_SPLIT


cdef Py_ssize_t on_message(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                           Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef Rec *r = <Rec *>st
    if key_is(b, ks, kl, b"id", 2):
        return string_field(b, p, e, &r.mid, &r.kind)
    if key_is(b, ks, kl, b"model", 5):
        return string_field(b, p, e, &r.model, &r.kind)
    if key_is(b, ks, kl, b"usage", 5):
        reset_usage(r)
        if b[p] == 123:
            r.has_usage = 1
            return parse_object(b, p, e, r, &r.kind, depth + 1, on_usage)
        return skip_value(b, p, e, depth + 1)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t on_top(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                       Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef Rec *r = <Rec *>st
    cdef int is_float = 0
    cdef Py_ssize_t q
    if key_is(b, ks, kl, b"type", 4):
        # json null reads as absent, like dict.get; any other value is a type.
        r.has_type = not (e - p >= 4 and memcmp(b + p, b"null", 4) == 0)
        return string_field(b, p, e, &r.typ, &r.kind)
    if key_is(b, ks, kl, b"message", 7):
        r.has_message = 0
        r.mid.start = -1
        r.model.start = -1
        reset_usage(r)
        if b[p] == 123:
            r.has_message = 1
            return parse_object(b, p, e, r, &r.kind, depth + 1, on_message)
        return skip_value(b, p, e, depth + 1)
    if key_is(b, ks, kl, b"timestamp", 9):
        return string_field(b, p, e, &r.ts, &r.kind)
    if key_is(b, ks, kl, b"requestId", 9):
        return string_field(b, p, e, &r.rid, &r.kind)
    if key_is(b, ks, kl, b"sessionId", 9):
        return string_field(b, p, e, &r.sid, &r.kind)
    if key_is(b, ks, kl, b"cwd", 3):
        return string_field(b, p, e, &r.cwd, &r.kind)
    if key_is(b, ks, kl, b"isSidechain", 11):
        r.flags &= ~F_SIDECHAIN
        if e - p >= 4 and memcmp(b + p, b"true", 4) == 0:
            r.flags |= F_SIDECHAIN
        return skip_value(b, p, e, depth + 1)
    if key_is(b, ks, kl, b"isApiErrorMessage", 17):
        r.flags &= ~F_API_ERROR
        if e - p >= 4 and memcmp(b + p, b"true", 4) == 0:
            r.flags |= F_API_ERROR
        return skip_value(b, p, e, depth + 1)
    if key_is(b, ks, kl, b"costUSD", 7):
        # validate.cost: a number in [0, COST_LIMIT), null as no cost, anything else bad
        r.flags &= ~F_COST
        r.cost_bad = 0
        if b[p] == 45 or 48 <= b[p] <= 57:
            q = skip_number(b, p, e, &is_float)
            if q < 0:
                return -1
            r.cost = strtod(<const char *>(b + p), NULL)
            if r.cost >= 0 and r.cost < COST_LIMIT:
                r.flags |= F_COST
            else:
                r.cost_bad = 1
            return q
        r.cost_bad = b[p] != 110
        return skip_value(b, p, e, depth + 1)
    return skip_value(b, p, e, depth + 1)


cdef int parse_line(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, Rec *r,
                    int64_t latest) noexcept nogil:
    cdef Py_ssize_t p
    r.kind = R_OTHER
    r.cost_bad = 0
    r.line_start = s
    r.line_end = e
    r.flags = 0
    r.has_message = 0
    r.has_type = 0
    r.cost = 0.0
    r.typ.start = -1
    r.ts.start = -1
    r.mid.start = -1
    r.rid.start = -1
    r.sid.start = -1
    r.model.start = -1
    r.cwd.start = -1
    reset_usage(r)
    p = skip_ws(b, s, e)
    if p >= e:
        return R_MALFORMED
    if b[p] != 123:
        p = skip_value(b, p, e, 0)
        if p < 0 or skip_ws(b, p, e) != e:
            return R_MALFORMED
        return R_OTHER
    p = parse_object(b, p, e, r, &r.kind, 0, on_top)
    if p < 0 or skip_ws(b, p, e) != e:
        return R_MALFORMED
    if r.kind == R_SLOW:
        return R_SLOW
    if r.has_type and not (r.typ.start >= 0 and r.typ.length == 9
                           and memcmp(b + r.typ.start, b"assistant", 9) == 0):
        return R_OTHER
    if not (r.has_message and r.has_usage):
        return R_OTHER
    if r.ts.start < 0 or not iso_to_ms(b + r.ts.start, r.ts.length, &r.ts_ms):
        return R_MALFORMED
    if r.ts_ms < TS_MIN_MS or r.ts_ms > latest:
        return R_MALFORMED
    # validate's bounds: any count read BAD, a bad cost (the split only when it counts,
    # as the twin reads it; cache_creation_input_tokens always)
    if (r.input < 0 or r.output < 0 or r.cc_total < 0 or r.cache_read < 0
            or r.web_search < 0 or r.cost_bad
            or (r.flags & F_SPLIT and (r.cc5m < 0 or r.cc1h < 0))):
        return R_MALFORMED
    if r.speed.start >= 0 and r.speed.length == 4 and memcmp(b + r.speed.start, b"fast", 4) == 0:
        r.flags |= F_FAST
    return R_USAGE


cdef class _StrCache:
    """Reuses the str of the previous record when the same bytes repeat (session, model, cwd)."""
    cdef const unsigned char *last
    cdef Py_ssize_t last_len
    cdef object value

    def __cinit__(self) -> None:
        self.last = NULL
        self.last_len = -1
        self.value = None

    cdef object get(self, const unsigned char *b, Span sp):
        if sp.start < 0 or sp.length == 0:
            return None
        if (self.last != NULL and sp.length == self.last_len
                and memcmp(self.last, b + sp.start, sp.length) == 0):
            return self.value
        self.value = PyUnicode_DecodeUTF8(<const char *>(b + sp.start), sp.length, "replace")
        self.last = b + sp.start
        self.last_len = sp.length
        return self.value


cdef inline int64_t _i(object v):
    return <int64_t>v


cdef tuple merge_pair(tuple a, tuple b):
    """Two copies of one response (same message id and request id), a first: as the twin's."""
    cdef int64_t ta = _i(a[7]) + _i(a[8]) + _i(a[9]) + _i(a[10]) + _i(a[11])
    cdef int64_t tb = _i(b[7]) + _i(b[8]) + _i(b[9]) + _i(b[10]) + _i(b[11])
    cdef tuple rep = b if tb > ta else a
    cdef int64_t fa = _i(a[14]), fb = _i(b[14])
    ca, cb = a[13], b[13]
    cost = cb if ca is None else (ca if cb is None or ca >= cb else cb)
    return (
        a[0], rep[1], a[2], a[3], rep[4], rep[5], rep[6],
        max(_i(a[7]), _i(b[7])), max(_i(a[8]), _i(b[8])), max(_i(a[9]), _i(b[9])),
        max(_i(a[10]), _i(b[10])), max(_i(a[11]), _i(b[11])), max(_i(a[12]), _i(b[12])),
        cost, ((fa & fb) & F_SIDECHAIN) | ((fa | fb) & ~F_SIDECHAIN),
    )


cdef inline void append_merged(list out, tuple rec):
    cdef tuple last
    cdef Py_ssize_t n = len(out)
    if n and rec[2] is not None and rec[3] is not None:
        last = <tuple>out[n - 1]
        if last[2] == rec[2] and last[3] == rec[3]:
            out[n - 1] = merge_pair(last, rec)
            return
    out.append(rec)


cdef inline object span_str(const unsigned char *b, Span sp):
    if sp.start < 0 or sp.length == 0:
        return None
    return PyUnicode_DecodeUTF8(<const char *>(b + sp.start), sp.length, "replace")


cdef inline Py_ssize_t span_bytes(Span sp) noexcept nogil:
    """Bytes a span holds: an absent one's length is left over from another line."""
    return sp.length if sp.start >= 0 and sp.length > 0 else 0


cdef inline Py_ssize_t copy_span(const unsigned char *b, Span *sp, unsigned char *arena,
                                  Py_ssize_t used) noexcept nogil:
    """Move a span's bytes into the arena at ``used``; the span then points there."""
    if sp.start >= 0 and sp.length > 0:
        memcpy(arena + used, b + sp.start, sp.length)
        sp.start = used
        used += sp.length
    return used


# --- Ledger rows built in C -----------------------------------------------------------
# Pending.rows makes of a window's records the rows tokline/sources/claude.py usage_rows
# makes of them (keys, contexts, computed costs) in the layout the compiled ledger writer
# binds (ext/_rows.pxd), so a cold scan builds no Python object per row.

# A record as records() gives it, its strings still spans of the arena.
cdef struct Flat:
    Py_ssize_t offset
    int64_t ts
    Span mid, rid, sid, model, cwd
    int64_t counts[6]  # input, output, cache_5m, cache_1h, cache_read, web_search
    double cost
    int has_cost
    int flags


# What a context's rows cost (tokline/accounting/pricing.py PriceBook.rates)
cdef enum:
    COST_NULL = 0  # no price: NULL
    COST_FIXED = 1  # always ``fixed`` (a synthetic message: 0.0)
    COST_PRICED = 2


cdef struct Rates:
    int kind
    double fixed
    double base[5]  # input, output, 5-minute and 1-hour cache writes, cache reads
    double tier[5]
    int has_tier
    int64_t threshold
    double fast
    double web


cdef inline void flatten(Rec *r, Flat *f) noexcept nogil:
    """records()' tuple of a parsed record."""
    cdef int64_t cc5m, cc1h
    f.offset = r.line_start
    f.ts = r.ts_ms
    f.mid = r.mid
    f.rid = r.rid
    f.sid = r.sid
    f.model = r.model
    f.cwd = r.cwd
    if r.flags & F_SPLIT:
        cc1h = r.cc1h
        cc5m = r.cc5m + r.cc1h
        if r.cc_total > cc5m:
            cc5m = r.cc_total
        cc5m -= cc1h
    else:
        cc5m = r.cc_total
        cc1h = 0
    f.counts[0] = r.input
    f.counts[1] = r.output
    f.counts[2] = cc5m
    f.counts[3] = cc1h
    f.counts[4] = r.cache_read
    f.counts[5] = r.web_search
    f.has_cost = (r.flags & F_COST) != 0
    f.cost = r.cost
    f.flags = r.flags & PUBLIC_FLAGS


cdef inline bint present(Span sp) noexcept nogil:
    """A string the record holds (span_str gives None for an absent or empty one)."""
    return sp.start >= 0 and sp.length > 0


cdef inline bint ascii(const unsigned char *b, Span sp) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(sp.start, sp.start + sp.length):
        if b[i] & 0x80:
            return 0
    return 1


cdef bint same_text(const unsigned char *b, Span x, Span y) except -1:
    """Whether two spans decode to the same string, or are both absent."""
    if not present(x) or not present(y):
        return not present(x) and not present(y)
    if x.length == y.length and memcmp(b + x.start, b + y.start, x.length) == 0:
        return 1
    if ascii(b, x) and ascii(b, y):
        return 0
    return span_str(b, x) == span_str(b, y)  # invalid UTF-8, replaced, may meet


cdef void merge_flat(Flat *a, Flat *b) noexcept nogil:
    """merge_pair(a, b) into ``a``."""
    cdef int64_t ta = a.counts[0] + a.counts[1] + a.counts[2] + a.counts[3] + a.counts[4]
    cdef int64_t tb = b.counts[0] + b.counts[1] + b.counts[2] + b.counts[3] + b.counts[4]
    cdef int i
    if tb > ta:
        a.ts = b.ts
        a.sid = b.sid
        a.model = b.model
        a.cwd = b.cwd
    for i in range(6):
        if b.counts[i] > a.counts[i]:
            a.counts[i] = b.counts[i]
    if not a.has_cost or (b.has_cost and not a.cost >= b.cost):
        a.cost = b.cost
        a.has_cost = b.has_cost
    a.flags = ((a.flags & b.flags) & F_SIDECHAIN) | ((a.flags | b.flags) & ~F_SIDECHAIN)


cdef unsigned long long hash_span(unsigned long long h, const unsigned char *b,
                                  Span sp) except? 0:
    """FNV-1a on, over the UTF-8 of the string the span decodes to (its own bytes unless
    invalid UTF-8 was replaced)."""
    cdef Py_ssize_t n
    cdef const char *text
    if ascii(b, sp):
        return fnv1a(h, b + sp.start, sp.length)
    decoded = span_str(b, sp)
    text = PyUnicode_AsUTF8AndSize(decoded, &n)
    return fnv1a(h, <const unsigned char *>text, n)


cdef unsigned long long hash_str(unsigned long long h, str text) except? 0:
    cdef Py_ssize_t n
    cdef const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n)
    return fnv1a(h, <const unsigned char *>utf8, n)


cdef int read_rates(object found, Rates *p) except -1:
    """PriceBook.rates' answer: None, a fixed cost, or a Price's terms (14 numbers)."""
    cdef int i
    if found is None:
        p.kind = COST_NULL
        return 0
    if isinstance(found, float):
        p.kind = COST_FIXED
        p.fixed = found
        return 0
    terms = tuple(found)
    if len(terms) != 14:
        raise ValueError("rates are 14 numbers")
    p.kind = COST_PRICED
    for i in range(5):
        p.base[i] = terms[i]
        p.tier[i] = terms[7 + i]
    p.has_tier = terms[5]
    p.threshold = terms[6]
    p.fast = terms[12]
    p.web = terms[13]
    return 0


cdef double row_cost(Rates *p, Flat *f) noexcept nogil:
    """Price.cost in C: the same doubles in the same order (setup.py builds this module
    without fused multiply-add), so the ledger holds what the twin would have stored."""
    cdef const double *rate = p.base
    cdef double total
    if p.has_tier and f.counts[0] + f.counts[2] + f.counts[3] + f.counts[4] > p.threshold:
        rate = p.tier
    total = (<double>f.counts[0] * rate[0] + <double>f.counts[1] * rate[1]
             + <double>f.counts[2] * rate[2] + <double>f.counts[3] * rate[3]
             + <double>f.counts[4] * rate[4])
    if f.flags & F_FAST:
        total *= p.fast
    return total + <double>f.counts[5] * p.web


cdef class _RowMaker:
    """One file's rows: usage_rows' key rules, its contexts (asked of ``resolve`` when the
    session, cwd or model differs from the last record's) and costs."""
    cdef const unsigned char *b
    cdef str path
    cdef str session_default
    cdef object resolve
    cdef object sidechain_ids
    cdef object main_ids
    cdef bint priced
    cdef bint have_context
    cdef Span sid, cwd, model
    cdef int64_t ctx
    cdef Rates rates

    cdef int same_context(self, Flat *f) except -1:
        return (self.have_context and same_bytes(self.b, self.sid, f.sid)
                and same_bytes(self.b, self.cwd, f.cwd)
                and same_bytes(self.b, self.model, f.model))

    cdef int make(self, Flat *f, Py_ssize_t base, tl_row *row) except -1:
        cdef unsigned long long group, member
        cdef char digits[24]
        cdef int ndigits
        cdef double calc = 0.0
        cdef bint calc_null = 1
        if present(f.mid) and present(f.rid):
            group = hash_span(FNV_OFFSET, self.b, f.mid)
            member = hash_span(FNV_OFFSET, self.b, f.rid)
            if f.flags & F_SIDECHAIN:
                self.sidechain_ids.add(span_str(self.b, f.mid))
            elif self.main_ids is not None:
                self.main_ids.add(span_str(self.b, f.mid))
        elif present(f.mid):
            # Whole key in the 48-bit half: a session holds many message ids.
            group = fnv1a(FNV_OFFSET, <const unsigned char *>b"\x1e", 1)
            group = (hash_span(group, self.b, f.sid) if present(f.sid)
                     else hash_str(group, self.session_default))
            group = hash_span(fnv1a(group, <const unsigned char *>b"\x1f", 1), self.b, f.mid)
            member = FNV_OFFSET
        else:
            group = hash_str(fnv1a(FNV_OFFSET, <const unsigned char *>b"\x1d", 1), self.path)
            ndigits = snprintf(digits, sizeof(digits), "%lld", <long long>(f.offset + base))
            group = fnv1a(fnv1a(group, <const unsigned char *>b"\x1f", 1),
                          <const unsigned char *>digits, ndigits)
            member = FNV_OFFSET
        if not self.same_context(f):
            found = self.resolve(span_str(self.b, f.sid), span_str(self.b, f.cwd),
                                 span_str(self.b, f.model))
            self.ctx = found[0]
            read_rates(found[1], &self.rates)
            self.sid = f.sid
            self.cwd = f.cwd
            self.model = f.model
            self.have_context = 1
        if self.priced and self.rates.kind != COST_NULL:
            calc_null = 0
            calc = self.rates.fixed if self.rates.kind == COST_FIXED else row_cost(&self.rates, f)
        row.v[V_KEY].i = pack_key(group, member)
        row.v[V_TS].i = f.ts
        row.v[V_CTX].i = self.ctx
        row.v[V_INPUT].i = f.counts[0]
        row.v[V_OUTPUT].i = f.counts[1]
        row.v[V_CACHE_5M].i = f.counts[2]
        row.v[V_CACHE_1H].i = f.counts[3]
        row.v[V_CACHE_READ].i = f.counts[4]
        row.v[V_WEB_SEARCH].i = f.counts[5]
        row.v[V_COST].d = f.cost
        row.v[V_FLAGS].i = f.flags
        row.v[V_COST_CALC].d = calc
        row.v[V_PRICED].i = 1 if self.priced else 0
        row.real = (1u << V_COST) | (1u << V_COST_CALC)
        row.null = ((0u if f.has_cost else 1u << V_COST)
                    | (1u << V_COST_CALC if calc_null else 0u))
        return 0


cdef inline bint same_bytes(const unsigned char *b, Span x, Span y) noexcept nogil:
    """Whether two spans hold the same bytes (absent and empty alike)."""
    if not present(x) or not present(y):
        return not present(x) and not present(y)
    return x.length == y.length and memcmp(b + x.start, b + y.start, x.length) == 0


cdef class Pending:
    """What scan_deferred found, held as C records whose strings were copied out of the
    buffer (which may be unmapped at once): records() builds the Python objects later,
    in whichever thread holds the GIL anyway."""
    cdef Rec *recs
    cdef Py_ssize_t count
    cdef unsigned char *arena
    cdef Py_ssize_t limit
    cdef Py_ssize_t malformed
    cdef int64_t latest

    def __cinit__(self) -> None:
        self.recs = NULL
        self.arena = NULL
        self.count = 0

    def __dealloc__(self) -> None:
        free(self.recs)
        free(self.arena)

    @property
    def end(self):
        """The offset just past the last complete line."""
        return self.limit

    @property
    def slow(self):
        """Lines left to the twin's decoder, which records() decodes (rows() does not)."""
        cdef Py_ssize_t i, n = 0
        for i in range(self.count):
            n += self.recs[i].kind == R_SLOW
        return n

    @property
    def parse_malformed(self):
        """Malformed lines known without the GIL; records() may find more among the
        lines left to the twin's decoder."""
        return self.malformed

    def records(self):
        """(records, end, malformed), as scan returns them."""
        cdef list out = []
        cdef _StrCache sids = _StrCache()
        cdef _StrCache models = _StrCache()
        cdef _StrCache cwds = _StrCache()
        cdef const unsigned char *b = self.arena
        cdef Py_ssize_t i
        cdef Rec *r
        cdef int64_t cc5m, cc1h
        cdef Py_ssize_t malformed = self.malformed
        for i in range(self.count):
            r = &self.recs[i]
            if r.kind == R_SLOW:
                # the line's bytes sit in the arena where its type span would
                rec = decode_slow_line(b[r.typ.start:r.typ.start + r.typ.length], r.line_start,
                                       self.latest)
                if rec is None:
                    continue
                if rec is False:
                    malformed += 1
                    continue
                append_merged(out, rec)
                continue
            if r.flags & F_SPLIT:
                # The total is cache_creation_input_tokens; the split only says which part
                # is 1-hour (Claude Code writes a zero split when the server sent none).
                cc1h = r.cc1h
                cc5m = r.cc5m + r.cc1h
                if r.cc_total > cc5m:
                    cc5m = r.cc_total
                cc5m -= cc1h
            else:
                cc5m = r.cc_total
                cc1h = 0
            append_merged(out, (
                r.line_start, r.ts_ms, span_str(b, r.mid), span_str(b, r.rid),
                sids.get(b, r.sid), models.get(b, r.model), cwds.get(b, r.cwd),
                r.input, r.output, cc5m, cc1h, r.cache_read, r.web_search,
                r.cost if r.flags & F_COST else None, r.flags & PUBLIC_FLAGS,
            ))
        return out, self.limit, malformed

    def rows(self, Py_ssize_t base, str path not None, str session_default not None,
             resolve, set sidechain_ids not None, set main_ids, bint priced):
        """The ledger rows tokline/sources/claude.py usage_rows makes of records(), as
        ``(packed rows, how many)`` for the compiled ledger writer's ``add_packed``, or
        None when a line is left to the twin's decoder (records() then).  ``base``: the
        window's file offset; ``resolve(session, cwd, model)`` -> (context id,
        PriceBook.rates of the model); message ids go to ``sidechain_ids`` or
        ``main_ids`` (None: not collected) as usage_rows adds them; ``priced``: the cost
        is computed (else NULL, priced 0)."""
        cdef Py_ssize_t i, n = 0
        cdef Rec *r
        cdef Flat held, cur
        cdef bint holding = 0
        cdef tl_row *out
        cdef _RowMaker maker
        for i in range(self.count):
            if self.recs[i].kind == R_SLOW:
                return None
        maker = _RowMaker.__new__(_RowMaker)
        maker.b = self.arena
        maker.path = path
        maker.session_default = session_default
        maker.resolve = resolve
        maker.sidechain_ids = sidechain_ids
        maker.main_ids = main_ids
        maker.priced = priced
        maker.have_context = 0
        out = <tl_row *>malloc((self.count if self.count else 1) * sizeof(tl_row))
        if out == NULL:
            raise MemoryError()
        try:
            for i in range(self.count):
                flatten(&self.recs[i], &cur)
                if (holding and present(cur.mid) and present(cur.rid)
                        and same_text(self.arena, held.mid, cur.mid)
                        and same_text(self.arena, held.rid, cur.rid)):
                    merge_flat(&held, &cur)
                    continue
                if holding:
                    maker.make(&held, base, &out[n])
                    n += 1
                held = cur
                holding = 1
            if holding:
                maker.make(&held, base, &out[n])
                n += 1
            return PyBytes_FromStringAndSize(<char *>out, n * sizeof(tl_row)), n
        finally:
            free(out)


cdef bint scan_into(const unsigned char *b, Py_ssize_t n, Py_ssize_t start, int64_t latest_ms,
                    Pending pending) noexcept nogil:
    """scan_deferred's work on b[start:n] into an empty ``pending``; False when memory ran
    out (what was found so far is in ``pending``, freed with it)."""
    cdef const unsigned char *nl
    cdef const unsigned char *u
    cdef Py_ssize_t limit, pos, ls, le, i, need, used
    cdef Rec *recs = NULL
    cdef Rec *r
    cdef Py_ssize_t count = 0, cap = 0
    cdef Py_ssize_t malformed = 0
    cdef int res
    cdef bint oom = 0
    cdef unsigned char *arena = NULL
    nl = tl_memrchr(b + start, 10, n - start)
    limit = (nl - b) + 1 if nl != NULL else start
    pos = start
    while pos < limit:
        u = tl_find_usage(b + pos, limit - pos)
        if u == NULL:
            break
        nl = <const unsigned char *>memchr(u, 10, limit - (u - b))
        le = nl - b
        nl = tl_memrchr(b + pos, 10, u - (b + pos))
        ls = (nl - b) + 1 if nl != NULL else pos
        pos = le + 1
        if count == cap and not grow(<void **>&recs, &cap, sizeof(Rec), 256):
            oom = 1
            break
        res = parse_line(b, ls, le, &recs[count], latest_ms)
        if res == R_MALFORMED:
            malformed += 1
        elif res == R_USAGE or res == R_SLOW:
            recs[count].kind = res
            count += 1
    need = 1
    for i in range(count):
        r = &recs[i]
        if r.kind == R_SLOW:
            need += r.line_end - r.line_start
        else:
            need += (span_bytes(r.mid) + span_bytes(r.rid) + span_bytes(r.sid)
                     + span_bytes(r.model) + span_bytes(r.cwd))
    if not oom:
        arena = <unsigned char *>malloc(need)
        oom = arena == NULL
    if not oom:
        used = 0
        for i in range(count):
            r = &recs[i]
            if r.kind == R_SLOW:
                memcpy(arena + used, b + r.line_start, r.line_end - r.line_start)
                r.typ.start = used
                r.typ.length = r.line_end - r.line_start
                used += r.typ.length
            else:
                used = copy_span(b, &r.mid, arena, used)
                used = copy_span(b, &r.rid, arena, used)
                used = copy_span(b, &r.sid, arena, used)
                used = copy_span(b, &r.model, arena, used)
                used = copy_span(b, &r.cwd, arena, used)
    pending.recs = recs
    pending.arena = arena
    pending.count = count
    pending.limit = limit
    pending.malformed = malformed
    return not oom


def scan_deferred(const unsigned char[::1] buf, Py_ssize_t start, latest=None):
    """scan's work without the GIL, and without building a Python object per record:
    a Pending whose records() gives what scan gives.  A scanner thread runs this so the
    thread writing rows keeps the GIL to itself.  ``latest``: the latest valid line time
    (epoch ms), tokline/engine/validate.py latest_ms() when None."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef Pending pending = Pending()
    cdef int64_t latest_ms
    cdef bint done
    if start < 0 or start > n:
        raise ValueError("start offset outside the buffer")
    latest_ms = default_latest() if latest is None else <int64_t>latest
    pending.latest = latest_ms
    pending.limit = start
    if n == start:
        return pending
    cdef const unsigned char *b = &buf[0]
    with nogil:
        done = scan_into(b, n, start, latest_ms, pending)
    if not done:
        raise MemoryError()
    return pending


# --- A whole file -----------------------------------------------------------------------

cdef extern from *:
    """
    #if defined(_WIN32)
    static int tl_open_read(const char *path) { (void)path; errno = ENOSYS; return -1; }
    static void tl_close(int fd) { (void)fd; }
    static Py_ssize_t tl_pread(int fd, void *buf, size_t n, long long at) {
        (void)fd; (void)buf; (void)n; (void)at; errno = ENOSYS; return -1; }
    static const unsigned char *tl_map(int fd, size_t length, long long at) {
        (void)fd; (void)length; (void)at; errno = ENOSYS; return NULL; }
    static void tl_unmap(const unsigned char *p, size_t length) { (void)p; (void)length; }
    static long tl_granularity(void) { return 65536; }
    #else
    #include <errno.h>
    #include <fcntl.h>
    #include <sys/mman.h>
    #include <unistd.h>
    #ifndef O_CLOEXEC
    #define O_CLOEXEC 0
    #endif
    static int tl_open_read(const char *path) {
        int fd;
        do fd = open(path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
        return fd;
    }
    static void tl_close(int fd) { close(fd); }
    /* Up to n bytes at ``at`` (fewer at the end of the file); -1 on an error. */
    static Py_ssize_t tl_pread(int fd, void *buf, size_t n, long long at) {
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(at + (long long)got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return -1;
            if (r == 0) break;
            got += (size_t)r;
        }
        return (Py_ssize_t)got;
    }
    static const unsigned char *tl_map(int fd, size_t length, long long at) {
        void *p = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, (off_t)at);
        return p == MAP_FAILED ? NULL : (const unsigned char *)p;
    }
    static void tl_unmap(const unsigned char *p, size_t length) { munmap((void *)p, length); }
    static long tl_granularity(void) { return sysconf(_SC_PAGESIZE); }
    #endif
    """
    int tl_open_read(const char *path) nogil
    void tl_close(int fd) nogil
    Py_ssize_t tl_pread(int fd, void *buf, size_t n, long long at) nogil
    const unsigned char *tl_map(int fd, size_t length, long long at) nogil
    void tl_unmap(const unsigned char *p, size_t length) nogil
    long tl_granularity() nogil
    int errno


cdef object _crc32 = None


cdef object head_crc(int fd, Py_ssize_t length, object path):
    """tokline/engine/filescan.py _head_crc: zlib's CRC-32 of the first ``length`` bytes."""
    global _crc32
    cdef Py_ssize_t got
    if length == 0:
        return 0
    if _crc32 is None:
        from zlib import crc32
        _crc32 = crc32
    cdef bytes head = PyBytes_FromStringAndSize(NULL, length)
    cdef char *buf = PyBytes_AS_STRING(head)
    with nogil:
        got = tl_pread(fd, buf, length, 0)
    if got < 0:
        raise_errno(path)
    return _crc32(head[:got] if got < length else head)


cdef int raise_errno(object path) except -1:
    PyErr_SetFromErrnoWithFilenameObject(OSError, path)
    return -1


def scan_path(str path not None, Py_ssize_t size, Py_ssize_t offset=0,
              Py_ssize_t known_head_len=0, known_head_crc=0, latest=None,
              Py_ssize_t window=8 << 20, Py_ssize_t head_bytes=4096):
    """tokline/engine/filescan.py scan_file's work on a Claude log, in C: open ``path``;
    go on from ``offset`` when its first ``known_head_len`` bytes still have the CRC-32
    ``known_head_crc`` (else read from 0); map the ``size`` bytes a ``window`` at a time,
    as filescan.each_window maps them (twice as long for a line longer than one), and
    scan each as scan_deferred does, without the GIL; the CRC-32 of the first
    ``head_bytes`` consumed; close.  Returns ``(parts, start, end, malformed, head_len,
    head_crc)``, ``parts`` as filescan.Deferred holds them: (Pending, window base)."""
    cdef bytes encoded = os_fsencode(path)
    cdef const char *name = encoded
    cdef int fd
    cdef Py_ssize_t start = 0, pos, base, length, end, malformed = 0
    cdef Py_ssize_t grain = tl_granularity(), span = window
    cdef const unsigned char *mapped
    cdef int64_t latest_ms = default_latest() if latest is None else <int64_t>latest
    cdef Pending pending
    cdef bint done
    cdef list parts = []
    with nogil:
        fd = tl_open_read(name)
    if fd < 0:
        raise_errno(path)
    try:
        if offset > 0 and head_crc(fd, known_head_len, path) == known_head_crc:
            start = offset
        pos = start
        while pos < size:
            base = pos - pos % grain
            length = min(size - base, span)
            pending = Pending()
            pending.latest = latest_ms
            with nogil:
                mapped = tl_map(fd, length, base)
                if mapped != NULL:
                    done = scan_into(mapped, length, pos - base, latest_ms, pending)
                    tl_unmap(mapped, length)
            if mapped == NULL:
                raise_errno(path)
            if not done:
                raise MemoryError()
            parts.append((pending, base))
            malformed += pending.malformed
            end = pending.limit
            if base + end > pos:
                pos = base + end
                span = window
            elif base + length >= size:
                break  # only an incomplete last line is left
            else:
                span *= 2  # one line longer than the window
        head_len = min(pos, head_bytes)
        return parts, start, pos, malformed, head_len, head_crc(fd, head_len, path)
    finally:
        tl_close(fd)


def scan(const unsigned char[::1] buf, Py_ssize_t start, latest=None):
    """Scan buf[start:] for usage lines.

    Returns (records, end, malformed): records as tokline.engine._claude_py documents, end = the
    offset just past the last complete line (an incomplete last line is not consumed),
    malformed = candidate lines that were not valid JSON, had a bad timestamp or failed
    tokline/engine/validate.py's bounds (``latest``: the latest valid time in epoch ms,
    validate.latest_ms() when None).
    """
    return scan_deferred(buf, start, latest).records()
def parse_iso_ms(str text):
    """Epoch ms of an ISO 8601 time as the scanner reads it, or None.  Twin:
    tokline/engine/_claude_py.py parse_iso_ms (the sources that parse JSON themselves use
    this)."""
    cdef Py_ssize_t n
    cdef const char *s = PyUnicode_AsUTF8AndSize(text, &n)
    cdef int64_t ms = 0
    if iso_to_ms(<const unsigned char *>s, n, &ms):
        return ms
    return None
