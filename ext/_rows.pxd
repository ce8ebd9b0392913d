# cython: language_level=3
"""Ledger usage rows in C: the layout the compiled ledger writer (ext/_writer_c.pyx) binds
and the Claude reader (ext/_claude_c.pyx) builds rows in, and the FNV-1a of the ledger's
keys (tokline/engine/keys.py), which ext/_keys_c.pyx computes too.

A row holds the values of tokline/ledger/store.py USAGE_COLUMNS, in that order, each an
integer, a double or NULL, as ``executemany`` would bind them from a UsageRow tuple."""

from libc.stdint cimport int64_t, uint32_t


cdef extern from *:
    """
    #include <stdint.h>
    #define TL_ROW_VALUES 13
    typedef union { int64_t i; double d; } tl_value;
    typedef struct {
        tl_value v[TL_ROW_VALUES];
        uint32_t real;  /* bit k: v[k] is a double */
        uint32_t null;  /* bit k: v[k] is NULL */
    } tl_row;
    """
    ctypedef union tl_value:
        int64_t i
        double d
    ctypedef struct tl_row:
        tl_value v[13]
        uint32_t real
        uint32_t null


# The values of a row, in USAGE_COLUMNS order.
cdef enum:
    ROW_VALUES = 13
    V_KEY = 0
    V_TS = 1
    V_CTX = 2
    V_INPUT = 3
    V_OUTPUT = 4
    V_CACHE_5M = 5
    V_CACHE_1H = 6
    V_CACHE_READ = 7
    V_WEB_SEARCH = 8
    V_COST = 9
    V_FLAGS = 10
    V_COST_CALC = 11
    V_PRICED = 12


cdef inline unsigned long long fnv1a(unsigned long long h, const unsigned char *p,
                                     Py_ssize_t n) noexcept nogil:
    """FNV-1a of ``n`` more bytes, from the hash ``h`` of those before
    (FNV_OFFSET to begin with)."""
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * 0x100000001b3ULL
    return h


cdef enum:
    KEY_LOW = 0xFFFF  # the member's bits of a key


cdef extern from *:
    """
    #define TL_FNV_OFFSET 0xcbf29ce484222325ULL
    """
    const unsigned long long FNV_OFFSET "TL_FNV_OFFSET"  # FNV-1a of no bytes


cdef inline long long pack_key(unsigned long long group, unsigned long long member) noexcept nogil:
    """key64: the group's hash in the high 48 bits, the member's in the low 16."""
    return <long long>((group & ~(<unsigned long long>KEY_LOW))
                       | (member & <unsigned long long>KEY_LOW))
