# cython: language_level=3
"""Ledger usage rows in C: the layout the compiled ledger writer (ext/_writer_c.pyx) binds.

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
