# cython: language_level=3
"""ISO 8601 times to epoch milliseconds, in C: the timestamps of Claude and Codex lines
(ext/_claude_c.pyx, ext/_codex_c.pyx) and, through tokline.engine._claude_c.parse_iso_ms,
of the sources that decode their JSON themselves.  Twin: tokline/engine/_claude_py.py
parse_iso_ms."""

from libc.stdint cimport int64_t


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


cdef inline int parse_iso_ms(const unsigned char *s, Py_ssize_t n, int64_t *out) noexcept nogil:
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
