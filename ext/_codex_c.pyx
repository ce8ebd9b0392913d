# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled reader of Codex CLI rollouts: tokline.engine._codex_c.

``candidate_lines`` finds the lines holding any of a few needles (twin:
tokline/engine/_codex_py.py candidate_lines, same results); ``codex_events`` finds them
and reads the plain token_count and turn_context events itself, handing back every
other line as its bytes for tokline/sources/codex.py to decode (its ``parse`` reads
both the same; tests/test_scan_differential.py holds them to it).  The JSON skipping,
ISO times and byte searches it shares with the Claude reader are ``cdef inline`` in
ext/*.pxd.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memchr, memcmp, memset

from _bytesearch cimport grow, tl_memmem, tl_memrchr
from _isotime cimport parse_iso_ms
from _jsonskip cimport (
    Span, field_fn, key_is, parse_object, skip_number, skip_value, skip_ws, string_field,
)


cdef extern from *:
    """
    #include <string.h>
    #if defined(__SSE2__) && defined(__GNUC__)
    #include <emmintrin.h>
    #endif
    /* Up to 8 needles that each begin with '"' (JSON string values); ``k`` is the offset
       of a rarer byte in each ('_' where there is one) that the filter also checks. */
    typedef struct { const unsigned char *p; size_t n; size_t k; } tl_needle;
    static int tl_needle_at(const unsigned char *c, const unsigned char *e,
                            const tl_needle *nd, int count) {
        for (int k = 0; k < count; k++)
            if ((size_t)(e - c) >= nd[k].n && memcmp(c, nd[k].p, nd[k].n) == 0) return 1;
        return 0;
    }
    /* First place in [h, h + n) where any needle starts, in one pass. */
    static const unsigned char *tl_find_any(const unsigned char *h, size_t n,
                                            const tl_needle *nd, int count) {
        const unsigned char *e = h + n;
        size_t i = 0, longest = 0;
        for (int k = 0; k < count; k++) if (nd[k].n > longest) longest = nd[k].n;
    #if defined(__SSE2__) && defined(__GNUC__)
        /* A '"' here and each needle's rare byte where it would be: Mula's filter, once
           for all needles (quotes alone pair up too often in JSON). */
        const __m128i quote = _mm_set1_epi8('"');
        for (; longest && i + longest + 16 <= n; i += 16) {
            __m128i open = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(h + i)), quote);
            __m128i rare = _mm_setzero_si128();
            for (int k = 0; k < count; k++)
                rare = _mm_or_si128(rare, _mm_cmpeq_epi8(
                    _mm_loadu_si128((const __m128i *)(h + i + nd[k].k)),
                    _mm_set1_epi8((char)nd[k].p[nd[k].k])));
            unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(open, rare));
            while (mask) {
                const unsigned char *c = h + i + __builtin_ctz(mask);
                if (tl_needle_at(c, e, nd, count)) return c;
                mask &= mask - 1;
            }
        }
    #endif
        for (; i < n; i++)
            if (h[i] == '"' && tl_needle_at(h + i, e, nd, count)) return h + i;
        return NULL;
    }
    /* Whether [s, e) is printable ASCII (no control byte, no byte above '~'). */
    static int tl_printable(const unsigned char *s, const unsigned char *e) {
    #if defined(__SSE2__) && defined(__GNUC__)
        const __m128i space = _mm_set1_epi8(32), del = _mm_set1_epi8(127);
        for (; e - s >= 16; s += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)s);
            /* signed: bytes from 128 up are negative, below ' ' like the controls */
            if (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, space),
                                               _mm_cmpeq_epi8(v, del)))) return 0;
        }
    #endif
        for (; s < e; s++) if (*s < 32 || *s > 126) return 0;
        return 1;
    }
    """
    ctypedef struct tl_needle:
        const unsigned char *p
        size_t n
        size_t k
    const unsigned char *tl_find_any(const unsigned char *h, size_t n, const tl_needle *nd,
                                     int count) nogil
    int tl_printable(const unsigned char *s, const unsigned char *e) nogil


cdef inline Py_ssize_t hit_line(const unsigned char *b, Py_ssize_t start, Py_ssize_t end,
                                const unsigned char *hit, Py_ssize_t *line_end) noexcept nogil:
    """Start of the line holding ``hit`` (not before ``start``); its end (the newline's
    offset, else ``end``) goes to ``line_end``."""
    cdef const unsigned char *nl = tl_memrchr(b + start, 10, <size_t>(hit - (b + start)))
    cdef const unsigned char *after = <const unsigned char *>memchr(
        hit, 10, <size_t>(end - (hit - b)))
    line_end[0] = (after - b) if after != NULL else end
    return (nl - b) + 1 if nl != NULL else start


cdef list _candidate_starts(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t end,
                            tuple needles):
    """Start offsets of the lines of buf[start:end] holding any of ``needles``, in order."""
    cdef tl_needle nd[8]
    cdef int count = _needle_table(needles, nd)
    cdef const unsigned char *b = &buf[0]
    cdef const unsigned char *hit
    cdef Py_ssize_t pos = start, line_end
    cdef list starts = []
    if count < 0:
        return _candidate_starts_each(buf, start, end, needles)
    while count and pos < end:
        hit = tl_find_any(b + pos, <size_t>(end - pos), nd, count)
        if hit == NULL:
            break
        starts.append(hit_line(b, start, end, hit, &line_end))
        pos = line_end + 1
    return starts


cdef list _candidate_starts_each(const unsigned char[::1] buf, Py_ssize_t start,
                                 Py_ssize_t end, tuple needles):
    """_candidate_starts for needles of any shape: one search per needle."""
    cdef const unsigned char *b = &buf[0]
    cdef const unsigned char *hit
    cdef Py_ssize_t n_len, pos, line_end
    cdef bytes pattern
    starts = set()
    for pattern in needles:
        n_len = len(pattern)
        pos = start
        while n_len and pos < end:
            hit = tl_memmem(b + pos, <size_t>(end - pos), <const unsigned char *>pattern,
                            <size_t>n_len)
            if hit == NULL:
                break
            starts.add(hit_line(b, start, end, hit, &line_end))
            pos = line_end + 1
    return sorted(starts)


def candidate_lines(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t end,
                    tuple needles):
    """The lines of buf[start:end] holding any of ``needles`` (bytes), in buffer order, each
    once.  ``end`` is just past a newline.  Twin: tokline/sources/codex.py candidate_lines."""
    cdef const unsigned char *b
    cdef const unsigned char *nl
    cdef Py_ssize_t line_start, line_end
    if end > buf.shape[0]:
        end = buf.shape[0]
    if start < 0 or end <= start:
        return []
    b = &buf[0]
    lines = []
    for line_start in _candidate_starts(buf, start, end, needles):
        nl = <const unsigned char *>memchr(b + line_start, 10, <size_t>(end - line_start))
        line_end = (nl - b) if nl != NULL else end
        lines.append(b[line_start:line_end])
    return lines


# --- Codex rollouts ---------------------------------------------------------------------
# The lines of a rollout that hold a needle are parsed here when they are plain token_count
# or turn_context events; anything else (session_meta, token_usage_record, escapes,
# duplicate keys, non-integer counts, control or non-ASCII bytes, invalid JSON) is handed
# back as its bytes for tokline/sources/codex.py to decode, so the two read the same.

cdef enum:
    CX_USAGE_ALL = 31  # the five counts of a token usage object


cdef struct CxUsage:
    int64_t v[5]  # input, cached input, output, reasoning, total
    int seen
    int bad


cdef struct CxRec:
    int slow
    int top_seen, payload_seen, info_seen
    Span typ, ts, ptyp, pmodel, pcwd, imodel
    int payload_is_obj, info_is_obj, has_total, has_last
    Py_ssize_t rl_start, rl_end
    CxUsage total, last


cdef inline bint cx_once(int *seen, int bit, CxRec *r) noexcept nogil:
    """A key met twice: json keeps the last, the fast path gives up on the line."""
    if seen[0] & bit:
        r.slow = 1
    seen[0] |= bit
    return 1


cdef Py_ssize_t cx_count(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, CxUsage *u,
                         int i) noexcept nogil:
    """A count the fast path takes: a JSON integer of at most 18 digits."""
    cdef int is_float = 0
    cdef Py_ssize_t q, digits
    cdef int64_t v = 0
    cdef bint neg = 0
    if u.seen & (1 << i):
        u.bad = 1
    u.seen |= 1 << i
    if not (b[p] == 45 or 48 <= b[p] <= 57):
        u.bad = 1
        return skip_value(b, p, e, 1)
    q = skip_number(b, p, e, &is_float)
    if q < 0:
        return -1
    digits = q - p
    if b[p] == 45:
        neg = 1
        p += 1
        digits -= 1
    if is_float or digits > 18:
        u.bad = 1
        return q
    while p < q:
        v = v * 10 + (b[p] - 48)
        p += 1
    u.v[i] = -v if neg else v
    return q


cdef Py_ssize_t cx_on_usage(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                            Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef CxUsage *u = <CxUsage *>st
    if key_is(b, ks, kl, b"input_tokens", 12):
        return cx_count(b, p, e, u, 0)
    if key_is(b, ks, kl, b"cached_input_tokens", 19):
        return cx_count(b, p, e, u, 1)
    if key_is(b, ks, kl, b"output_tokens", 13):
        return cx_count(b, p, e, u, 2)
    if key_is(b, ks, kl, b"reasoning_output_tokens", 23):
        return cx_count(b, p, e, u, 3)
    if key_is(b, ks, kl, b"total_tokens", 12):
        return cx_count(b, p, e, u, 4)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t cx_model(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Span *out,
                         CxRec *r) noexcept nogil:
    """A model name: a string, or null as absent; anything else is for the slow path."""
    if b[p] == 34 or (e - p >= 4 and memcmp(b + p, b"null", 4) == 0):
        return string_field(b, p, e, out, &r.slow)
    r.slow = 1
    return skip_value(b, p, e, 1)


cdef inline Py_ssize_t cx_object(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, void *st,
                                 int *slow, int *is_obj, int depth, field_fn on_field
                                 ) noexcept nogil:
    """A field that counts only as an object: parsed into ``st`` by ``on_field``, else
    skipped; ``is_obj`` tells which."""
    is_obj[0] = b[p] == 123
    if is_obj[0]:
        return parse_object(b, p, e, st, slow, depth + 1, on_field)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t cx_usage_object(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, CxUsage *u,
                                int *present, CxRec *r, int depth) noexcept nogil:
    u.seen = 0
    u.bad = 0
    return cx_object(b, p, e, u, &r.slow, present, depth, cx_on_usage)


cdef Py_ssize_t cx_on_info(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                           Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef CxRec *r = <CxRec *>st
    if key_is(b, ks, kl, b"total_token_usage", 17) and cx_once(&r.info_seen, 1, r):
        return cx_usage_object(b, p, e, &r.total, &r.has_total, r, depth)
    if key_is(b, ks, kl, b"last_token_usage", 16) and cx_once(&r.info_seen, 2, r):
        return cx_usage_object(b, p, e, &r.last, &r.has_last, r, depth)
    if key_is(b, ks, kl, b"model", 5) and cx_once(&r.info_seen, 4, r):
        return cx_model(b, p, e, &r.imodel, r)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t cx_on_payload(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                              Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef CxRec *r = <CxRec *>st
    cdef Py_ssize_t q
    if key_is(b, ks, kl, b"type", 4) and cx_once(&r.payload_seen, 1, r):
        return string_field(b, p, e, &r.ptyp, &r.slow)
    if key_is(b, ks, kl, b"info", 4) and cx_once(&r.payload_seen, 2, r):
        return cx_object(b, p, e, r, &r.slow, &r.info_is_obj, depth, cx_on_info)
    if key_is(b, ks, kl, b"rate_limits", 11) and cx_once(&r.payload_seen, 4, r):
        q = skip_value(b, p, e, depth + 1)
        if q >= 0 and not (q - p == 4 and memcmp(b + p, b"null", 4) == 0):
            r.rl_start = p
            r.rl_end = q
        return q
    if key_is(b, ks, kl, b"model", 5) and cx_once(&r.payload_seen, 8, r):
        return cx_model(b, p, e, &r.pmodel, r)
    if key_is(b, ks, kl, b"cwd", 3) and cx_once(&r.payload_seen, 16, r):
        return string_field(b, p, e, &r.pcwd, &r.slow)
    return skip_value(b, p, e, depth + 1)


cdef Py_ssize_t cx_on_top(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Py_ssize_t ks,
                          Py_ssize_t kl, void *st, int depth) noexcept nogil:
    cdef CxRec *r = <CxRec *>st
    if key_is(b, ks, kl, b"timestamp", 9) and cx_once(&r.top_seen, 1, r):
        return string_field(b, p, e, &r.ts, &r.slow)
    if key_is(b, ks, kl, b"type", 4) and cx_once(&r.top_seen, 2, r):
        return string_field(b, p, e, &r.typ, &r.slow)
    if key_is(b, ks, kl, b"payload", 7) and cx_once(&r.top_seen, 4, r):
        return cx_object(b, p, e, r, &r.slow, &r.payload_is_obj, depth, cx_on_payload)
    return skip_value(b, p, e, depth + 1)


cdef inline bint span_is(const unsigned char *b, Span sp, const char *text, Py_ssize_t n
                         ) noexcept nogil:
    return sp.start >= 0 and sp.length == n and memcmp(b + sp.start, text, n) == 0


# What cx_parse_line found
cdef enum:
    CX_IGNORE = 0
    CX_RAW = 1
    CX_TOKENS = 2
    CX_CONTEXT = 3


cdef int cx_parse_line(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, CxRec *r,
                       int64_t *ts_ms) noexcept nogil:
    cdef Py_ssize_t p
    memset(r, 0, sizeof(CxRec))
    r.typ.start = r.ts.start = r.ptyp.start = r.pmodel.start = r.pcwd.start = -1
    r.imodel.start = -1
    r.rl_start = -1
    # Printable ASCII only: control characters (json rejects them inside strings) and
    # UTF-8 (which may be invalid) are left to the slow path.
    if not tl_printable(b + s, b + e):
        return CX_RAW
    p = skip_ws(b, s, e)
    if p >= e or b[p] != 123:
        return CX_RAW
    p = parse_object(b, p, e, r, &r.slow, 0, cx_on_top)
    if p < 0 or skip_ws(b, p, e) != e or r.slow:
        return CX_RAW
    if not r.payload_is_obj:
        return CX_IGNORE
    if span_is(b, r.typ, b"turn_context", 12):
        return CX_CONTEXT
    if span_is(b, r.typ, b"session_meta", 12) or span_is(b, r.typ, b"token_usage_record", 18):
        return CX_RAW
    if not (span_is(b, r.typ, b"event_msg", 9) and span_is(b, r.ptyp, b"token_count", 11)):
        return CX_IGNORE
    if r.ts.start < 0 or not parse_iso_ms(b + r.ts.start, r.ts.length, ts_ms):
        return CX_RAW
    if r.info_is_obj and (
            (r.has_total and (r.total.bad or r.total.seen != CX_USAGE_ALL))
            or (r.has_last and (r.last.bad or r.last.seen != CX_USAGE_ALL))):
        return CX_RAW
    return CX_TOKENS


cdef inline object cx_counts(CxUsage *u, int present):
    if not present:
        return None
    return (u.v[0], u.v[1], u.v[2], u.v[3], u.v[4])


cdef inline object cx_name(const unsigned char *b, Span sp):
    """A non-empty name, else None (json's empty string and null both fall through)."""
    if sp.start < 0 or sp.length == 0:
        return None
    return PyUnicode_DecodeUTF8(<const char *>(b + sp.start), sp.length, "strict")


cdef struct CxLine:
    Py_ssize_t start, end
    int kind
    int64_t ts_ms
    CxRec rec


cdef int _needle_table(tuple needles, tl_needle *nd) except -2:
    """Fill ``nd`` (8 slots) for tl_find_any; -1 when a needle does not suit it."""
    cdef int count = 0
    cdef bytes pattern
    for pattern in needles:
        if count == 8 or len(pattern) < 2 or pattern[0] != 34:
            return -1
        nd[count].p = <const unsigned char *>pattern
        nd[count].n = len(pattern)
        nd[count].k = pattern.find(b"_") if b"_" in pattern else len(pattern) - 1
        count += 1
    return count


cdef object cx_item(const unsigned char *b, CxLine *line):
    cdef CxRec *r = &line.rec
    if line.kind == CX_RAW:
        return b[line.start:line.end]
    if line.kind == CX_CONTEXT:
        return (cx_name(b, r.pmodel), cx_name(b, r.pcwd))
    override = cx_name(b, r.imodel)
    return (line.ts_ms, b[r.rl_start:r.rl_end] if r.rl_start >= 0 else None,
            bool(r.info_is_obj), cx_counts(&r.total, r.info_is_obj and r.has_total),
            cx_counts(&r.last, r.info_is_obj and r.has_last),
            override if override is not None else cx_name(b, r.pmodel))


cdef CxLine *find_lines(const unsigned char *b, Py_ssize_t start, Py_ssize_t end,
                        const tl_needle *nd, int count, Py_ssize_t *found,
                        bint *oom) noexcept nogil:
    """The lines of b[start:end] holding a needle that count for something, parsed (a
    malloc'ed array of ``found[0]``, NULL when none); ``oom`` when memory ran out."""
    cdef CxLine *lines = NULL
    cdef const unsigned char *hit
    cdef Py_ssize_t n = 0, cap = 0, pos = start
    while count and pos < end:
        hit = tl_find_any(b + pos, <size_t>(end - pos), nd, count)
        if hit == NULL:
            break
        if n == cap and not grow(<void **>&lines, &cap, sizeof(CxLine), 64):
            oom[0] = 1
            break
        lines[n].start = hit_line(b, start, end, hit, &lines[n].end)
        pos = lines[n].end + 1
        lines[n].kind = cx_parse_line(b, lines[n].start, lines[n].end, &lines[n].rec,
                                      &lines[n].ts_ms)
        if lines[n].kind != CX_IGNORE:
            n += 1
    found[0] = n
    return lines


def codex_events(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t end,
                 tuple needles):
    """The lines of buf[start:end] holding a needle, in order, as tokline/sources/codex.py
    reads them: ``(ts_ms, rate_limits JSON bytes or None, info is an object, total counts
    or None, last counts or None, model override or None)`` for a token_count event,
    ``(model or None, cwd or None)`` for a turn_context, the line's bytes for anything
    else it must decode itself; nothing for lines that count for nothing.

    Finding and parsing run in one stretch without the GIL (a scanner thread that let go
    of it line by line would wait for it as often), then the results are built."""
    cdef const unsigned char *b
    cdef const unsigned char *nl
    cdef tl_needle nd[8]
    cdef int count
    cdef CxLine *lines = NULL
    cdef CxLine one
    cdef Py_ssize_t n = 0, pos, i
    cdef bint oom = 0
    cdef list out = []
    if end > buf.shape[0]:
        end = buf.shape[0]
    if start < 0 or end <= start:
        return out
    b = &buf[0]
    count = _needle_table(needles, nd)
    if count < 0:
        for pos in _candidate_starts_each(buf, start, end, needles):
            nl = <const unsigned char *>memchr(b + pos, 10, <size_t>(end - pos))
            one.start = pos
            one.end = (nl - b) if nl != NULL else end
            one.kind = cx_parse_line(b, one.start, one.end, &one.rec, &one.ts_ms)
            if one.kind != CX_IGNORE:
                out.append(cx_item(b, &one))
        return out
    with nogil:
        lines = find_lines(b, start, end, nd, count, &n, &oom)
    try:
        if oom:
            raise MemoryError()
        for i in range(n):
            out.append(cx_item(b, &lines[i]))
    finally:
        free(lines)
    return out


# --- Codex's per-line state machine -----------------------------------------------------
# read_events does what tokline/sources/codex.py parse does with codex_events' items,
# without making them: the running total of a rollout (FileState.prev), its model and
# directory, the usage events, the newest rate limits.  Lines it cannot read (session
# metadata, token_usage_record, escapes...) go to codex.py's own line reader, with the
# state handed over and taken back.

cdef int64_t TS_MIN_MS = 946684800000  # tokline/engine/validate.py TS_MIN_MS
cdef int64_t COUNT_LIMIT = 10000000000  # validate.COUNT_LIMIT


cdef struct Total:
    int64_t v[5]  # input, cached input, output, reasoning, total


cdef inline bint counts_ok(CxUsage *u) noexcept nogil:
    cdef int i
    for i in range(5):
        if u.v[i] < 0 or u.v[i] >= COUNT_LIMIT:
            return 0
    return 1


cdef inline void clamp(CxUsage *u, Total *t) noexcept nogil:
    """codex.py _clamp."""
    cdef int64_t inp = u.v[0] if u.v[0] > 0 else 0
    cdef int64_t out = u.v[2] if u.v[2] > 0 else 0
    t.v[0] = inp
    t.v[1] = (u.v[1] if u.v[1] < inp else inp) if u.v[1] > 0 else 0
    t.v[2] = out
    t.v[3] = u.v[3] if u.v[3] > 0 else 0
    t.v[4] = u.v[4] if u.v[4] > 0 else inp + out


cdef class _Limits:
    """Rate-limit snapshots in the order met: (ts, the value a line codex.py read gave,
    -1), or (ts, None, the index of the compiled line whose JSON it is)."""
    cdef list items

    def __cinit__(self):
        self.items = []

    def __call__(self, ts, value):  # codex.py _parse_line's on_limits
        self.items.append((ts, value, -1))


cdef class _Machine:
    """codex.FileState, held in C between the lines codex.py reads itself."""
    cdef object state
    cdef object session, root, cwd, model
    cdef Total prev
    cdef bint has_prev
    cdef bint records

    cdef load(self):
        cdef object prev
        cdef int i
        state = self.state
        self.session = state.session
        self.root = state.root
        self.cwd = state.cwd
        self.model = state.model
        self.records = bool(state.records)
        prev = state.prev
        self.has_prev = prev is not None
        if self.has_prev:
            for i in range(5):
                self.prev.v[i] = prev[i]

    cdef store(self):
        state = self.state
        state.cwd = self.cwd
        state.model = self.model
        state.prev = self.total_tuple(&self.prev) if self.has_prev else None

    cdef tuple total_tuple(self, Total *t):
        return (t.v[0], t.v[1], t.v[2], t.v[3], t.v[4])

    cdef object advance(self, Total *total, Total *last, bint has_total, bint has_last,
                        int64_t ts, object model):
        """codex.py _advance: the event of a token count, or None."""
        cdef Total t, delta
        cdef int64_t drop, step
        cdef bint use_prev = self.has_prev
        cdef char ident[128]
        cdef int i
        if has_total:
            t = total[0]
        elif has_last:
            for i in range(5):
                t.v[i] = (self.prev.v[i] if self.has_prev else 0) + last.v[i]
        else:
            return None
        if t.v[0] == 0 and t.v[2] == 0:
            return None  # context-overflow filler: all categories 0; the baseline stays
        if use_prev:
            if (t.v[0] == self.prev.v[0] and t.v[1] == self.prev.v[1]
                    and t.v[2] == self.prev.v[2] and t.v[3] == self.prev.v[3]
                    and t.v[4] == self.prev.v[4]):
                return None  # re-emitted snapshot
            if t.v[4] < self.prev.v[4]:
                drop = self.prev.v[4] - t.v[4]
                step = last.v[4] if has_last else 0
                if <double>drop <= 0.02 * <double>self.prev.v[4] or drop <= 2 * step:
                    return None  # an out-of-order stale snapshot
                use_prev = 0  # the counter was reset
        for i in range(5):
            delta.v[i] = t.v[i]
            if use_prev:
                delta.v[i] = t.v[i] - self.prev.v[i] if t.v[i] > self.prev.v[i] else 0
        self.prev = t
        self.has_prev = 1
        snprintf(ident, sizeof(ident), "%lld,%lld,%lld,%lld,%lld", <long long>t.v[0],
                 <long long>t.v[1], <long long>t.v[2], <long long>t.v[3], <long long>t.v[4])
        return (ts, self.session, self.root, self.cwd,
                model or self.model or _FALLBACK_MODEL, self.total_tuple(&delta),
                ident.decode("ascii"))


_FALLBACK_MODEL = "gpt-5"  # tokline/sources/codex.py FALLBACK_MODEL


cdef int by_time(const void *a, const void *b) noexcept nogil:
    cdef const int64_t *x = <const int64_t *>a
    cdef const int64_t *y = <const int64_t *>b
    if x[0] != y[0]:
        return -1 if x[0] < y[0] else 1
    return -1 if x[1] < y[1] else (1 if x[1] > y[1] else 0)


def read_events(const unsigned char[::1] buf, Py_ssize_t start, Py_ssize_t end,
                tuple needles, state, on_limits, int64_t latest, read_line,
                Py_ssize_t kept):
    """tokline/sources/codex.py parse(codex_events(buf, start, end, needles), state,
    on_limits) without making the items: returns (events, malformed) and advances
    ``state`` (a codex.FileState) alike; ``read_line(line, state, on_limits, events,
    latest)`` is codex.py's _parse_line, for the lines left to it; the newest ``kept``
    rate-limit snapshots go to ``on_limits`` (a compiled line's as its JSON bytes),
    oldest first, after the lines."""
    cdef const unsigned char *b
    cdef tl_needle nd[8]
    cdef int count
    cdef CxLine *lines = NULL
    cdef CxLine *line
    cdef CxRec *r
    cdef Py_ssize_t n = 0, i, k, m
    cdef bint oom = 0
    cdef list events = []
    cdef Py_ssize_t malformed = 0
    cdef _Machine machine
    cdef _Limits seen
    cdef Total total, last
    cdef bint has_total, has_last
    cdef int64_t *order = NULL
    cdef list raw_seen
    if end > buf.shape[0]:
        end = buf.shape[0]
    count = _needle_table(needles, nd)
    if start < 0 or end <= start or count <= 0:
        if count < 0:
            raise ValueError("needles read_events cannot search for at once")
        return events, 0
    b = &buf[0]
    with nogil:
        lines = find_lines(b, start, end, nd, count, &n, &oom)
    try:
        if oom:
            raise MemoryError()
        machine = _Machine.__new__(_Machine)
        machine.state = state
        machine.load()
        seen = _Limits()
        for i in range(n):
            line = &lines[i]
            r = &line.rec
            if line.kind == CX_RAW:
                machine.store()
                malformed += read_line(b[line.start:line.end], state, seen, events, latest)
                machine.load()
            elif line.kind == CX_CONTEXT:
                name = cx_name(b, r.pmodel)
                if name:
                    machine.model = name
                cwd = cx_name(b, r.pcwd)
                if cwd is not None and not machine.cwd:
                    machine.cwd = cwd
            else:
                has_total = r.info_is_obj and r.has_total
                has_last = r.info_is_obj and r.has_last
                if not (TS_MIN_MS <= line.ts_ms <= latest
                        and (not has_total or counts_ok(&r.total))
                        and (not has_last or counts_ok(&r.last))):
                    malformed += 1  # as _parse_line finds the same line
                    continue
                if r.rl_start >= 0:
                    seen.items.append((line.ts_ms, None, i))
                if r.info_is_obj:
                    if has_total:
                        clamp(&r.total, &total)
                    if has_last:
                        clamp(&r.last, &last)
                    override = cx_name(b, r.imodel)
                    event = machine.advance(
                        &total, &last, has_total, has_last, line.ts_ms,
                        override if override is not None else cx_name(b, r.pmodel))
                    if event is not None and not machine.records:
                        events.append(event)
        machine.store()
        # Every token row repeats the rate limits: only the newest few can matter.
        m = len(seen.items)
        if m:
            order = <int64_t *>malloc(m * 2 * sizeof(int64_t))
            if order == NULL:
                raise MemoryError()
            for k in range(m):
                order[2 * k] = seen.items[k][0]
                order[2 * k + 1] = k
            qsort(order, m, 2 * sizeof(int64_t), by_time)
            for k in range(m - kept if m > kept else 0, m):
                ts, value, at = seen.items[order[2 * k + 1]]
                if at >= 0:  # a compiled line's: its JSON bytes
                    line = &lines[<Py_ssize_t>at]
                    value = b[line.rec.rl_start:line.rec.rl_end]
                on_limits(ts, value)
    finally:
        free(lines)
        free(order)
    return events, malformed
