# cython: language_level=3
"""What the compiled readers (ext/_claude_c.pyx, ext/_codex_c.pyx) share below JSON: byte
searches in C, the quote-or-backslash search at the heart of every JSON string (SSE2
where there is SSE2), memmem and memrchr (the libc ones where there are), and ``grow``,
the doubling C array each collects its lines in.  Static or ``cdef inline`` in every
module that cimports this file, so a call costs what a call inside one module costs; no
Python in between."""

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
    #if defined(__SSE2__) && defined(__GNUC__)
    #include <emmintrin.h>
    /* First '"' or backslash in [p, e): the inner loop of every JSON string. */
    static inline const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
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
    static inline const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
                                                        const unsigned char *e) {
        for (; p < e; p++) if (*p == '"' || *p == 92) return p;
        return NULL;
    }
    #endif
    static inline const unsigned char *tl_memrchr(const unsigned char *s, int c, size_t n) {
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
    const unsigned char *tl_memrchr(const unsigned char *s, int c, size_t n) nogil
    const unsigned char *tl_find_quote_or_escape(const unsigned char *p,
                                                 const unsigned char *e) nogil


from libc.stdlib cimport realloc


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
