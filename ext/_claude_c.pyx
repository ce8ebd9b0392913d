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

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport floor
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, strtod
from libc.string cimport memchr, memcmp, memcpy

from _bytesearch cimport grow, tl_memmem, tl_memrchr
from _isotime cimport parse_iso_ms as iso_to_ms
from _jsonskip cimport (
    R_SLOW, Span, field_fn, key_is, parse_object, skip_number, skip_value, skip_ws,
    string_field,
)


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


def scan_deferred(const unsigned char[::1] buf, Py_ssize_t start, latest=None):
    """scan's work without the GIL, and without building a Python object per record:
    a Pending whose records() gives what scan gives.  A scanner thread runs this so the
    thread writing rows keeps the GIL to itself.  ``latest``: the latest valid line time
    (epoch ms), tokline/engine/validate.py latest_ms() when None."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef const unsigned char *b
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
    cdef Pending pending = Pending()
    cdef int64_t latest_ms
    if start < 0 or start > n:
        raise ValueError("start offset outside the buffer")
    latest_ms = default_latest() if latest is None else <int64_t>latest
    pending.latest = latest_ms
    pending.limit = start
    if n == start:
        return pending
    b = &buf[0]
    with nogil:
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
    if oom:
        raise MemoryError()
    return pending


def scan(const unsigned char[::1] buf, Py_ssize_t start, latest=None):
    """Scan buf[start:] for usage lines.

    Returns (records, end, malformed): records as tokline.engine._claude_py documents, end = the
    offset just past the last complete line (an incomplete last line is not consumed),
    malformed = candidate lines that were not valid JSON, had a bad timestamp or failed
    tokline/engine/validate.py's bounds (``latest``: the latest valid time in epoch ms,
    validate.latest_ms() when None).
    """
    return scan_deferred(buf, start, latest).records()
cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


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
