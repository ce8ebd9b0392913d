# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled scanner for Claude Code JSONL usage lines.

The pure-Python twin is tokline/_scan_py.py: same signature, same results
(tests/test_scan_differential.py holds them to it).  Only lines that contain
the bytes ``"usage":{`` are parsed; each of them is parsed structurally and
validated as JSON, so a ``"usage"`` inside a string value never counts.

A line whose interpreted keys or values use backslash escapes is rare in real
logs; it is handed back as ``SLOW`` and the twin's json.loads path decodes it,
which keeps this file small without giving up exactness.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc, realloc, strtod
from libc.string cimport memchr, memcmp, memcpy, memset



cdef object _slow_decoder = None


cdef object decode_slow_line(bytes line, Py_ssize_t offset):
    # Imported on first use: the twin pulls in json and re, which the no-change
    # refresh path (manifest_unchanged) must not pay for.
    global _slow_decoder
    if _slow_decoder is None:
        from tokline.engine._claude_py import decode_slow_line as decoder
        _slow_decoder = decoder
    return _slow_decoder(line, offset)


cdef extern from *:
    """
    #include <string.h>
    static inline const unsigned char *tl_memmem(const unsigned char *h, size_t hl,
                                          const unsigned char *n, size_t nl) {
    #if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
        return (const unsigned char *)memmem(h, hl, n, nl);
    #else
        const unsigned char *end = h + hl;
        while (hl >= nl) {
            const unsigned char *p = (const unsigned char *)memchr(h, n[0], hl - nl + 1);
            if (!p) return NULL;
            if (memcmp(p, n, nl) == 0) return p;
            h = p + 1; hl = (size_t)(end - h);
        }
        return NULL;
    #endif
    }
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
    /* First '"' or backslash in [p, e): the inner loop of every JSON string. */
    static const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
                                                        const unsigned char *e) {
        const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8(92);
        while (e - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));
            if (mask) return p + __builtin_ctz(mask);
            p += 16;
        }
        for (; p < e; p++) if (*p == '"' || *p == 92) return p;
        return NULL;
    }
    #else
    static const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
                                                        const unsigned char *e) {
        for (; p < e; p++) if (*p == '"' || *p == 92) return p;
        return NULL;
    }
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
    static const unsigned char *tl_memrchr(const unsigned char *s, int c, size_t n) {
    #if defined(__GLIBC__)
        return (const unsigned char *)memrchr(s, c, n);
    #else
        while (n) { n--; if (s[n] == (unsigned char)c) return s + n; }
        return NULL;
    #endif
    }
    """
    const unsigned char *tl_memmem(const unsigned char *h, size_t hl,
                                   const unsigned char *n, size_t nl) nogil
    ctypedef struct tl_needle:
        const unsigned char *p
        size_t n
        size_t k
    const unsigned char *tl_find_any(const unsigned char *h, size_t n, const tl_needle *nd,
                                     int count) nogil
    int tl_printable(const unsigned char *s, const unsigned char *e) nogil
    const unsigned char *tl_memrchr(const unsigned char *s, int c, size_t n) nogil
    const unsigned char *tl_find_usage(const unsigned char *h, size_t n) nogil
    const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
                                                 const unsigned char *e) nogil


# Record flags; the twin defines the same values.  F_SPLIT and F_COST stay internal.
cdef enum:
    F_SIDECHAIN = 1
    F_SPLIT = 2
    F_FAST = 4
    F_COST = 8
    F_API_ERROR = 16
    PUBLIC_FLAGS = 1 | 4 | 16
    MAX_DEPTH = 512

# parse_line results
cdef enum:
    R_MALFORMED = -1
    R_OTHER = 0
    R_USAGE = 1
    R_SLOW = 2

cdef int64_t TOKEN_CAP = 9007199254740992  # 2**53

cdef struct Span:
    Py_ssize_t start  # -1: absent
    Py_ssize_t length


cdef struct Rec:
    Py_ssize_t line_start
    Py_ssize_t line_end
    int kind
    int64_t ts_ms
    Span ts, mid, rid, sid, model, cwd, typ, speed
    int64_t input, output, cc_total, cc5m, cc1h, cache_read, web_search
    double cost
    int flags
    int has_message
    int has_usage
    int has_type


cdef inline bint is_ws(unsigned char c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline Py_ssize_t skip_ws(const unsigned char *b, Py_ssize_t p, Py_ssize_t e) noexcept nogil:
    while p < e and is_ws(b[p]):
        p += 1
    return p


cdef inline int hexval(unsigned char c) noexcept nogil:
    if 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102:
        return 1
    return 0


cdef Py_ssize_t skip_string(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
                            int *escaped) noexcept nogil:
    """p is just past the opening quote; returns the index past the closing quote or -1."""
    cdef const unsigned char *q
    cdef unsigned char c
    while True:
        q = tl_find_quote_or_escape(b + p, b + e)
        if q == NULL:
            return -1
        if q[0] == 34:
            return (q - b) + 1
        escaped[0] = 1
        p = (q - b) + 1
        if p >= e:
            return -1
        c = b[p]
        if c == 117:  # \uXXXX
            if p + 4 >= e:
                return -1
            if not (hexval(b[p + 1]) and hexval(b[p + 2]) and hexval(b[p + 3]) and hexval(b[p + 4])):
                return -1
            p += 5
        elif c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
            p += 1
        else:
            return -1


cdef Py_ssize_t skip_number(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
                            int *is_float) noexcept nogil:
    if p < e and b[p] == 45:
        p += 1
    if p >= e:
        return -1
    if b[p] == 48:
        p += 1
    elif 49 <= b[p] <= 57:
        while p < e and 48 <= b[p] <= 57:
            p += 1
    else:
        return -1
    if p < e and b[p] == 46:
        is_float[0] = 1
        p += 1
        if p >= e or not (48 <= b[p] <= 57):
            return -1
        while p < e and 48 <= b[p] <= 57:
            p += 1
    if p < e and (b[p] == 101 or b[p] == 69):
        is_float[0] = 1
        p += 1
        if p < e and (b[p] == 43 or b[p] == 45):
            p += 1
        if p >= e or not (48 <= b[p] <= 57):
            return -1
        while p < e and 48 <= b[p] <= 57:
            p += 1
    return p


cdef Py_ssize_t skip_value(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, int depth) noexcept nogil:
    cdef unsigned char c
    cdef int dummy = 0
    if p >= e:
        return -1
    c = b[p]
    if c == 34:
        return skip_string(b, p + 1, e, &dummy)
    if c == 123 or c == 91:
        return skip_container(b, p, e, depth)
    if c == 116:
        return p + 4 if e - p >= 4 and memcmp(b + p, b"true", 4) == 0 else -1
    if c == 102:
        return p + 5 if e - p >= 5 and memcmp(b + p, b"false", 5) == 0 else -1
    if c == 110:
        return p + 4 if e - p >= 4 and memcmp(b + p, b"null", 4) == 0 else -1
    return skip_number(b, p, e, &dummy)


cdef Py_ssize_t skip_container(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, int depth) noexcept nogil:
    cdef unsigned char close = 125 if b[p] == 123 else 93
    cdef bint is_obj = b[p] == 123
    cdef int dummy = 0
    if depth >= MAX_DEPTH:
        return -1
    p = skip_ws(b, p + 1, e)
    if p < e and b[p] == close:
        return p + 1
    while True:
        if is_obj:
            if p >= e or b[p] != 34:
                return -1
            p = skip_string(b, p + 1, e, &dummy)
            if p < 0:
                return -1
            p = skip_ws(b, p, e)
            if p >= e or b[p] != 58:
                return -1
            p = skip_ws(b, p + 1, e)
        p = skip_value(b, p, e, depth + 1)
        if p < 0:
            return -1
        p = skip_ws(b, p, e)
        if p >= e:
            return -1
        if b[p] == 44:
            p = skip_ws(b, p + 1, e)
            continue
        if b[p] == close:
            return p + 1
        return -1


cdef inline bint key_is(const unsigned char *b, Py_ssize_t ks, Py_ssize_t kl, const char *name,
                        Py_ssize_t nl) noexcept nogil:
    return kl == nl and memcmp(b + ks, name, nl) == 0


cdef int64_t read_tokens(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, bint is_float) noexcept nogil:
    """Token count of a validated JSON number: truncated, clamped to [0, 2**53]."""
    cdef int64_t v = 0
    cdef double d
    if not is_float:
        if b[s] == 45:
            return 0
        while s < e:
            v = v * 10 + (b[s] - 48)
            if v >= TOKEN_CAP:
                return TOKEN_CAP
            s += 1
        return v
    d = strtod(<const char *>(b + s), NULL)
    if d != d or d <= 0:
        return 0
    if d >= <double>TOKEN_CAP:
        return TOKEN_CAP
    return <int64_t>d


# Each object parser: p at '{'; returns index past '}' or -1; sets *slow = R_SLOW on
# escaped keys.  ``st`` is the record its field callbacks fill (a Rec or a CxRec).
ctypedef Py_ssize_t (*field_fn)(const unsigned char *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, void *, int) noexcept nogil


cdef Py_ssize_t parse_object(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, void *st,
                             int *slow, int depth, field_fn on_field) noexcept nogil:
    cdef Py_ssize_t ks, ke
    cdef int escaped
    if depth >= MAX_DEPTH:
        return -1
    p = skip_ws(b, p + 1, e)
    if p < e and b[p] == 125:
        return p + 1
    while True:
        if p >= e or b[p] != 34:
            return -1
        ks = p + 1
        escaped = 0
        p = skip_string(b, ks, e, &escaped)
        if p < 0:
            return -1
        ke = p - 1
        if escaped:
            slow[0] = R_SLOW
        p = skip_ws(b, p, e)
        if p >= e or b[p] != 58:
            return -1
        p = skip_ws(b, p + 1, e)
        if p >= e:
            return -1
        p = on_field(b, p, e, ks, ke - ks, st, depth)
        if p < 0:
            return -1
        p = skip_ws(b, p, e)
        if p >= e:
            return -1
        if b[p] == 44:
            p = skip_ws(b, p + 1, e)
            continue
        if b[p] == 125:
            return p + 1
        return -1


cdef Py_ssize_t string_field(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Span *out,
                             int *slow) noexcept nogil:
    """A field we keep as a string: absent unless the value is a string."""
    cdef int escaped = 0
    cdef Py_ssize_t q
    out.start = -1
    out.length = 0
    if b[p] != 34:
        return skip_value(b, p, e, 1)
    q = skip_string(b, p + 1, e, &escaped)
    if q < 0:
        return -1
    if escaped:
        slow[0] = R_SLOW
    out.start = p + 1
    out.length = q - 1 - (p + 1)
    return q


cdef Py_ssize_t number_field(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
                             int64_t *out) noexcept nogil:
    cdef int is_float = 0
    cdef Py_ssize_t q
    out[0] = 0
    if b[p] == 45 or 48 <= b[p] <= 57:
        q = skip_number(b, p, e, &is_float)
        if q < 0:
            return -1
        out[0] = read_tokens(b, p, q, is_float)
        return q
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
        r.flags &= ~F_COST
        if b[p] == 45 or 48 <= b[p] <= 57:
            q = skip_number(b, p, e, &is_float)
            if q < 0:
                return -1
            r.cost = strtod(<const char *>(b + p), NULL)
            if r.cost == r.cost and r.cost >= 0 and r.cost < 1e300:
                r.flags |= F_COST
            return q
        return skip_value(b, p, e, depth + 1)
    return skip_value(b, p, e, depth + 1)


cdef inline int two_digits(const unsigned char *s, int *out) noexcept nogil:
    if not (48 <= s[0] <= 57 and 48 <= s[1] <= 57):
        return 0
    out[0] = (s[0] - 48) * 10 + (s[1] - 48)
    return 1


cdef inline int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef int parse_iso_ms(const unsigned char *s, Py_ssize_t n, int64_t *out) noexcept nogil:
    """YYYY-MM-DDTHH:MM:SS[.fff…][Z|±HH:MM] -> epoch ms; 0 when it does not parse."""
    cdef int y1, y2, mo, d, h, mi, sec, oh, om, i, ms = 0, digits = 0
    cdef Py_ssize_t p = 19
    cdef int64_t offset_min = 0
    if n < 19 or s[4] != 45 or s[7] != 45 or s[10] != 84 or s[13] != 58 or s[16] != 58:
        return 0
    if not (two_digits(s, &y1) and two_digits(s + 2, &y2) and two_digits(s + 5, &mo)
            and two_digits(s + 8, &d) and two_digits(s + 11, &h) and two_digits(s + 14, &mi)
            and two_digits(s + 17, &sec)):
        return 0
    if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 59:
        return 0
    if p < n and s[p] == 46:
        p += 1
        while p < n and 48 <= s[p] <= 57:
            if digits < 3:
                ms = ms * 10 + (s[p] - 48)
            digits += 1
            p += 1
        if digits == 0:
            return 0
        i = digits
        while i < 3:
            ms *= 10
            i += 1
    if p < n:
        if s[p] == 90 and p + 1 == n:
            p += 1
        elif (s[p] == 43 or s[p] == 45) and p + 6 == n and s[p + 3] == 58:
            if not (two_digits(s + p + 1, &oh) and two_digits(s + p + 4, &om)):
                return 0
            if oh > 23 or om > 59:
                return 0
            offset_min = oh * 60 + om
            if s[p] == 45:
                offset_min = -offset_min
            p = n
        else:
            return 0
    out[0] = ((days_from_civil(y1 * 100 + y2, mo, d) * 86400 + h * 3600 + mi * 60 + sec
               - offset_min * 60) * 1000 + ms)
    return 1


cdef int parse_line(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, Rec *r) noexcept nogil:
    cdef Py_ssize_t p
    r.kind = R_OTHER
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
    if r.ts.start < 0 or not parse_iso_ms(b + r.ts.start, r.ts.length, &r.ts_ms):
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


cdef inline bint grow(void **items, Py_ssize_t *cap, size_t size, Py_ssize_t first
                      ) noexcept nogil:
    """Double an array's room (``first`` slots to begin with); False when memory ran out."""
    cdef Py_ssize_t wanted = cap[0] * 2 if cap[0] else first
    cdef void *grown = realloc(items[0], wanted * size)
    if grown == NULL:
        return 0
    items[0] = grown
    cap[0] = wanted
    return 1


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
                rec = decode_slow_line(b[r.typ.start:r.typ.start + r.typ.length], r.line_start)
                if rec is None:
                    continue
                if rec is False:
                    malformed += 1
                    continue
                append_merged(out, rec)
                continue
            if r.flags & F_SPLIT:
                cc5m = r.cc5m
                cc1h = r.cc1h
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


def scan_deferred(const unsigned char[::1] buf, Py_ssize_t start):
    """scan's work without the GIL, and without building a Python object per record:
    a Pending whose records() gives what scan gives.  A scanner thread runs this so the
    thread writing rows keeps the GIL to itself."""
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
    if start < 0 or start > n:
        raise ValueError("start offset outside the buffer")
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
            res = parse_line(b, ls, le, &recs[count])
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


def scan(const unsigned char[::1] buf, Py_ssize_t start):
    """Scan buf[start:] for usage lines.

    Returns (records, end, malformed): records as tokline.engine._claude_py documents, end = the
    offset just past the last complete line (an incomplete last line is not consumed),
    malformed = candidate lines that were not valid JSON or had a bad timestamp.
    """
    return scan_deferred(buf, start).records()


cdef extern from "sys/stat.h" nogil:
    """
    static int tl_stat(const char *path, long long *ino, long long *size, long long *mtime_ns,
                       int *is_dir) {
        struct stat st;
        if (stat(path, &st) != 0) return -1;
        *ino = (long long)st.st_ino;
        *size = (long long)st.st_size;
    #if defined(__APPLE__)
        *mtime_ns = (long long)st.st_mtimespec.tv_sec * 1000000000LL + st.st_mtimespec.tv_nsec;
    #else
        *mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    #endif
        *is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
        return 0;
    }
    """
    int tl_stat(const char *path, long long *ino, long long *size, long long *mtime_ns,
                int *is_dir)


cdef inline long long _le64(const unsigned char *p) noexcept nogil:
    cdef unsigned long long v = 0
    cdef int i
    for i in range(7, -1, -1):
        v = (v << 8) | p[i]
    return <long long>v


def manifest_unchanged(const unsigned char[::1] data, Py_ssize_t start, Py_ssize_t end):
    """True when every entry of data[start:end], a stat manifest's (tokline/manifest.py),
    still holds."""
    cdef Py_ssize_t n = end
    cdef Py_ssize_t p = start
    cdef const unsigned char *b
    cdef unsigned char kind
    cdef long long ino, size, mtime, cur_ino, cur_size, cur_mtime
    cdef unsigned int length
    cdef int is_dir, found
    cdef char path[4097]
    cdef bint ok = 1
    if end > data.shape[0] or start < 0:
        raise ValueError("range outside the manifest")
    if n <= start:
        return n == start
    b = &data[0]
    with nogil:
        while p < n:
            if p + 29 > n:
                ok = 0
                break
            kind = b[p]
            ino = _le64(b + p + 1)
            size = _le64(b + p + 9)
            mtime = _le64(b + p + 17)
            length = b[p + 25] | (b[p + 26] << 8) | (b[p + 27] << 16) | (<unsigned int>b[p + 28] << 24)
            p += 29
            if length > 4096 or p + length > n:
                ok = 0
                break
            memcpy(path, b + p, length)
            path[length] = 0
            p += length
            found = tl_stat(path, &cur_ino, &cur_size, &cur_mtime, &is_dir) == 0
            if kind == 109:  # 'm': must still be missing (or not a directory)
                if found and is_dir:
                    ok = 0
                    break
            elif not found:
                ok = 0
                break
            elif kind == 100 or kind == 112:  # 'd', 'p': no entry added or removed
                if cur_mtime != mtime or not is_dir:
                    ok = 0
                    break
            elif cur_ino != ino or cur_size != size or cur_mtime != mtime:
                ok = 0
                break
    return bool(ok)


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


cdef inline unsigned long long _fnv1a(const unsigned char *p, Py_ssize_t n) noexcept nogil:
    cdef unsigned long long h = 0xcbf29ce484222325ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 0x100000001b3ULL
    return h


def key64(str group, str member):
    """Ledger key of (group, member): FNV-1a of the group's UTF-8 in the high 48 bits and of
    the member's in the low 16, as a signed 64-bit integer.  Keys of one group (a message
    id's responses) share a range, which the sidechain rule scans.  Twin: tokline/keys.py."""
    cdef Py_ssize_t ga, mb
    cdef const char *g = PyUnicode_AsUTF8AndSize(group, &ga)
    cdef const char *m = PyUnicode_AsUTF8AndSize(member, &mb)
    cdef unsigned long long h = ((_fnv1a(<const unsigned char *>g, ga) & ~0xFFFFULL)
                                 | (_fnv1a(<const unsigned char *>m, mb) & 0xFFFFULL))
    return <long long>h


def iso_ms(str text):
    """Epoch ms of an ISO 8601 time as the scanner reads it, or None.  Twin:
    tokline/_scan_py.py parse_iso_ms (the sources that parse JSON themselves use this)."""
    cdef Py_ssize_t n
    cdef const char *s = PyUnicode_AsUTF8AndSize(text, &n)
    cdef int64_t ms = 0
    if parse_iso_ms(<const unsigned char *>s, n, &ms):
        return ms
    return None


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
    cdef const unsigned char *hit
    cdef const unsigned char *nl
    cdef tl_needle nd[8]
    cdef int count
    cdef CxLine *lines = NULL
    cdef CxLine one
    cdef Py_ssize_t n = 0, cap = 0, pos, i
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
    pos = start
    with nogil:
        while count and pos < end:
            hit = tl_find_any(b + pos, <size_t>(end - pos), nd, count)
            if hit == NULL:
                break
            if n == cap and not grow(<void **>&lines, &cap, sizeof(CxLine), 64):
                oom = 1
                break
            lines[n].start = hit_line(b, start, end, hit, &lines[n].end)
            pos = lines[n].end + 1
            lines[n].kind = cx_parse_line(b, lines[n].start, lines[n].end, &lines[n].rec,
                                          &lines[n].ts_ms)
            if lines[n].kind != CX_IGNORE:
                n += 1
    try:
        if oom:
            raise MemoryError()
        for i in range(n):
            out.append(cx_item(b, &lines[i]))
    finally:
        free(lines)
    return out


def manifest_names_under(const unsigned char[::1] data, Py_ssize_t start, Py_ssize_t end,
                         bytes prefix):
    """The paths (bytes) of the stat-manifest entries in data[start:end] that begin with
    ``prefix``.  Twin: tokline/manifest.py names_under."""
    cdef const unsigned char *b
    cdef const unsigned char *pre = prefix
    cdef Py_ssize_t plen = len(prefix)
    cdef Py_ssize_t p = start
    cdef unsigned int length
    cdef set found = set()
    if end > data.shape[0] or start < 0:
        raise ValueError("range outside the manifest")
    if end <= start:
        return found
    b = &data[0]
    while p + 29 <= end:
        length = b[p + 25] | (b[p + 26] << 8) | (b[p + 27] << 16) | (<unsigned int>b[p + 28] << 24)
        p += 29
        if p + length > end:
            break
        if length >= plen and memcmp(b + p, pre, plen) == 0:
            found.add(b[p:p + length])
        p += length
    return found
