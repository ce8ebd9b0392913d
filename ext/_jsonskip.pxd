# cython: language_level=3
"""JSON, validated and skipped without building objects: what both compiled readers
(Claude, ext/_claude_c.pyx; Codex, ext/_codex_c.pyx) parse their lines with.

``parse_object`` walks an object and hands each member to a field callback, which reads
the values its reader keeps (``string_field`` keeps a string as a ``Span`` of the line)
and skips the rest (``skip_value``).  A key or kept string with a backslash escape sets
``*slow = R_SLOW``: the reader then leaves the line to its pure twin's decoder.  All
``cdef inline``: each reader gets its own copy, so no call crosses a module.
"""

from libc.string cimport memcmp

from _bytesearch cimport tl_find_quote_or_escape


cdef enum:
    MAX_DEPTH = 512  # nesting a line may have before it counts as malformed
    R_SLOW = 2  # *slow when an escape was met (the Claude reader's parse result of that name)


cdef struct Span:
    Py_ssize_t start  # -1: absent
    Py_ssize_t length


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


cdef inline Py_ssize_t skip_string(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
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


cdef inline Py_ssize_t skip_number(const unsigned char *b, Py_ssize_t p, Py_ssize_t e,
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


cdef inline Py_ssize_t skip_value(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, int depth) noexcept nogil:
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


cdef inline Py_ssize_t skip_container(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, int depth) noexcept nogil:
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



# Each object parser: p at '{'; returns index past '}' or -1; sets *slow = R_SLOW on
# escaped keys.  ``st`` is the record its field callbacks fill (a Rec or a CxRec).
ctypedef Py_ssize_t (*field_fn)(const unsigned char *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, void *, int) noexcept nogil


cdef inline Py_ssize_t parse_object(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, void *st,
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


cdef inline Py_ssize_t string_field(const unsigned char *b, Py_ssize_t p, Py_ssize_t e, Span *out,
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
