# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled checks of the stat manifest (tokline/prompt/manifest.py): tokline.prompt._manifest_c.

``entries_unchanged`` stats every entry of a stretch of the manifest without the GIL
and says whether all still hold; ``names_under`` lists the entries' paths under a
directory.  Twins, same names and results: tokline/prompt/manifest.py.  The prompt's
up-to-date check (tokline/prompt/uptodate.py) loads this only for a full check.
"""

from libc.string cimport memcmp, memcpy

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


def entries_unchanged(const unsigned char[::1] data, Py_ssize_t start, Py_ssize_t end):
    """True when every entry of data[start:end], a stat manifest's, still holds.  Twin:
    tokline/prompt/manifest.py entries_unchanged."""
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



def names_under(const unsigned char[::1] data, Py_ssize_t start, Py_ssize_t end,
                bytes prefix):
    """The paths (bytes) of the stat-manifest entries in data[start:end] that begin with
    ``prefix``.  Twin: tokline/prompt/manifest.py names_under."""
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
