# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled ledger keys: tokline.engine._keys_c.  ``key64`` is FNV-1a of two strings packed
into one signed 64-bit key; twin: tokline/engine/keys.py key64_py (same results).  The
Claude reader builds the same keys in C (ext/_rows.pxd holds the hash for both)."""

from _rows cimport FNV_OFFSET, fnv1a, pack_key


cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL


def key64(str group, str member):
    """Ledger key of (group, member): FNV-1a of the group's UTF-8 in the high 48 bits and of
    the member's in the low 16, as a signed 64-bit integer.  Keys of one group (a message
    id's responses) share a range, which the sidechain rule scans.  Twin:
    tokline/engine/keys.py key64_py."""
    cdef Py_ssize_t ga, mb
    cdef const char *g = PyUnicode_AsUTF8AndSize(group, &ga)
    cdef const char *m = PyUnicode_AsUTF8AndSize(member, &mb)
    return pack_key(fnv1a(FNV_OFFSET, <const unsigned char *>g, ga),
                    fnv1a(FNV_OFFSET, <const unsigned char *>m, mb))
