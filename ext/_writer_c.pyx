# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled ledger writer: tokline.ledger._writer_c.

``Batch`` holds usage rows in C and upserts them in key order through SQLite's C API
(prepared once, integers and doubles bound, stepped), on the very connection the
``sqlite3`` module opened and through the very libsqlite3 its ``_sqlite3`` module loaded:
the few sqlite3_* functions used are declared here and found at run time (``dlopen`` of
``_sqlite3``'s file with RTLD_NOLOAD, ``dlsym`` through that handle, which searches the
libraries it depends on).  So the build needs no SQLite headers and no second SQLite, and
where the functions cannot be found the twin writes.  Twin: tokline/ledger/_writer_py.py
(``executemany``); tests/test_writer.py holds the two to the same ledger.

The connection's ``sqlite3 *`` is the field right after PyObject_HEAD of CPython's
pysqlite_Connection (3.10 to 3.13 checked).  It is used only when this library's
auto-extension (registered by ``watch``, before ``sqlite3.connect``) saw that very pointer
being opened, and SQLite agrees with Python on the file's name and on whether a
transaction is open; otherwise ``open_handle`` says why and the twin writes.
"""

import sqlite3

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_AsLongLong, PyLong_Check
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint32_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy

from _bytesearch cimport grow
from _rows cimport ROW_VALUES, V_TS, tl_row


cdef extern from *:
    """
    #include <string.h>
    #if !defined(_WIN32)
    #include <dlfcn.h>
    #endif
    typedef struct sqlite3 sqlite3;
    typedef struct sqlite3_stmt sqlite3_stmt;
    #define TL_SQLITE_OK 0
    #define TL_SQLITE_DONE 101

    /* The functions of SQLite's C API this module calls, as sqlite3.h declares them. */
    typedef struct {
        int (*libversion_number)(void);
        int (*auto_extension)(void (*)(void));
        int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
        int (*bind_parameter_count)(sqlite3_stmt *);
        int (*bind_int64)(sqlite3_stmt *, int, long long);
        int (*bind_double)(sqlite3_stmt *, int, double);
        int (*bind_null)(sqlite3_stmt *, int);
        int (*step)(sqlite3_stmt *);
        int (*reset)(sqlite3_stmt *);
        int (*finalize)(sqlite3_stmt *);
        const char *(*errmsg)(sqlite3 *);
        int (*extended_errcode)(sqlite3 *);
        const char *(*db_filename)(sqlite3 *, const char *);
        int (*get_autocommit)(sqlite3 *);
        sqlite3 *(*db_handle)(sqlite3_stmt *);
    } tl_sqlite_api;
    static tl_sqlite_api tl_api;

    /* NULL when every function was found through ``module_file`` (the _sqlite3 module's
       library, already loaded; NULL: the program itself), else what was missing. */
    static const char *tl_load(const char *module_file) {
    #if defined(_WIN32)
        (void)module_file;
        return "dlopen (Windows has none)";
    #else
        void *h = dlopen(module_file, RTLD_NOLOAD | RTLD_LAZY);
        if (h == NULL) return "the _sqlite3 module's library (dlopen)";
    #define TL_SYM(field, name) \\
        if ((*(void **)(&tl_api.field) = dlsym(h, name)) == NULL) { dlclose(h); return name; }
        TL_SYM(libversion_number, "sqlite3_libversion_number")
        TL_SYM(auto_extension, "sqlite3_auto_extension")
        TL_SYM(prepare_v2, "sqlite3_prepare_v2")
        TL_SYM(bind_parameter_count, "sqlite3_bind_parameter_count")
        TL_SYM(bind_int64, "sqlite3_bind_int64")
        TL_SYM(bind_double, "sqlite3_bind_double")
        TL_SYM(bind_null, "sqlite3_bind_null")
        TL_SYM(step, "sqlite3_step")
        TL_SYM(reset, "sqlite3_reset")
        TL_SYM(finalize, "sqlite3_finalize")
        TL_SYM(errmsg, "sqlite3_errmsg")
        TL_SYM(extended_errcode, "sqlite3_extended_errcode")
        TL_SYM(db_filename, "sqlite3_db_filename")
        TL_SYM(get_autocommit, "sqlite3_get_autocommit")
        TL_SYM(db_handle, "sqlite3_db_handle")
    #undef TL_SYM
        /* The library stays loaded: the _sqlite3 module holds it. */
        dlclose(h);
        return NULL;
    #endif
    }

    /* Connections this library opened since watch(): its auto-extension is called with
       each new one.  A ring; a ledger looks its own up right after opening it. */
    #define TL_SEEN 64
    static sqlite3 *tl_seen[TL_SEEN];
    static unsigned tl_seen_next;
    #if defined(__GNUC__)
    #define TL_NEXT_SLOT() (__atomic_fetch_add(&tl_seen_next, 1u, __ATOMIC_RELAXED) % TL_SEEN)
    #define TL_PUT(i, db) __atomic_store_n(&tl_seen[i], (db), __ATOMIC_RELEASE)
    #define TL_GET(i) __atomic_load_n(&tl_seen[i], __ATOMIC_ACQUIRE)
    #else
    #define TL_NEXT_SLOT() (tl_seen_next++ % TL_SEEN)
    #define TL_PUT(i, db) (tl_seen[i] = (db))
    #define TL_GET(i) (tl_seen[i])
    #endif
    static int tl_on_open(sqlite3 *db, const char **err, const void *routines) {
        unsigned i = TL_NEXT_SLOT();
        (void)err; (void)routines;
        TL_PUT(i, db);
        return TL_SQLITE_OK;
    }
    static int tl_watch(void) {
        return tl_api.auto_extension((void (*)(void))tl_on_open);
    }
    static int tl_was_opened(sqlite3 *db) {
        int i;
        for (i = 0; i < TL_SEEN; i++) if (TL_GET(i) == db) return 1;
        return 0;
    }

    /* Rows in key order, ties in the order they came (executemany of a stable sort). */
    typedef struct { long long key; Py_ssize_t at; } tl_order;
    static int tl_by_key(const void *a, const void *b) {
        const tl_order *x = (const tl_order *)a, *y = (const tl_order *)b;
        if (x->key != y->key) return x->key < y->key ? -1 : 1;
        return x->at < y->at ? -1 : x->at > y->at;
    }

    /* Bind and step each row; TL_SQLITE_DONE, or the code of the call that failed (its
       message is the connection's; the statement is not reset). */
    static int tl_write(sqlite3_stmt *st, const tl_row *rows, const tl_order *order,
                        Py_ssize_t n) {
        Py_ssize_t k;
        int j, rc;
        for (k = 0; k < n; k++) {
            const tl_row *r = rows + order[k].at;
            for (j = 0; j < TL_ROW_VALUES; j++) {
                if (r->null >> j & 1u) rc = tl_api.bind_null(st, j + 1);
                else if (r->real >> j & 1u) rc = tl_api.bind_double(st, j + 1, r->v[j].d);
                else rc = tl_api.bind_int64(st, j + 1, r->v[j].i);
                if (rc != TL_SQLITE_OK) return rc;
            }
            rc = tl_api.step(st);
            if (rc != TL_SQLITE_DONE) return rc;
            tl_api.reset(st);
        }
        return TL_SQLITE_DONE;
    }
    """
    ctypedef struct sqlite_db "sqlite3"
    ctypedef struct sqlite_stmt "sqlite3_stmt"
    ctypedef struct tl_sqlite_api:
        int (*libversion_number)() noexcept nogil
        int (*prepare_v2)(sqlite_db *, const char *, int, sqlite_stmt **,
                          const char **) noexcept nogil
        int (*bind_parameter_count)(sqlite_stmt *) noexcept nogil
        int (*reset)(sqlite_stmt *) noexcept nogil
        int (*finalize)(sqlite_stmt *) noexcept nogil
        const char *(*errmsg)(sqlite_db *) noexcept nogil
        int (*extended_errcode)(sqlite_db *) noexcept nogil
        const char *(*db_filename)(sqlite_db *, const char *) noexcept nogil
        int (*get_autocommit)(sqlite_db *) noexcept nogil
        sqlite_db *(*db_handle)(sqlite_stmt *) noexcept nogil
    ctypedef struct tl_order:
        long long key
        Py_ssize_t at
    tl_sqlite_api tl_api
    int TL_SQLITE_OK
    int TL_SQLITE_DONE
    const char *tl_load(const char *module_file) noexcept
    int tl_watch() noexcept
    int tl_was_opened(sqlite_db *db) noexcept nogil
    int tl_by_key(const void *a, const void *b) noexcept nogil
    int tl_write(sqlite_stmt *st, const tl_row *rows, const tl_order *order,
                 Py_ssize_t n) noexcept nogil


# Why the C API cannot be used (None: it can), found once.
cdef object _unavailable = "watch() was not called"
cdef bint _loaded = 0


def watch():
    """Find SQLite's functions through the _sqlite3 module and register the auto-extension
    that sees each connection it opens; call before ``sqlite3.connect``.  Returns None, or
    why the C API cannot be used (the twin then writes)."""
    global _unavailable, _loaded
    if _loaded:
        return _unavailable
    _loaded = 1
    try:
        import _sqlite3
    except ImportError:
        _unavailable = "no _sqlite3 module"
        return _unavailable
    cdef object where = getattr(_sqlite3, "__file__", None)
    cdef bytes path = where.encode() if isinstance(where, str) else None
    cdef const char *missing = tl_load(<const char *>path if path is not None else NULL)
    if missing != NULL:
        _unavailable = "not found: " + missing.decode()
    elif tl_api.libversion_number() != _version_number(sqlite3.sqlite_version_info):
        _unavailable = "the _sqlite3 module's library is not the SQLite it reports"
    elif tl_watch() != TL_SQLITE_OK:
        _unavailable = "sqlite3_auto_extension failed"
    else:
        _unavailable = None
    return _unavailable


cdef int _version_number(tuple info):
    return info[0] * 1000000 + info[1] * 1000 + info[2]


cdef sqlite_db *_pointer_of(object conn) noexcept:
    """The ``sqlite3 *`` field of a pysqlite_Connection (right after PyObject_HEAD)."""
    return (<sqlite_db **>(<char *><PyObject *>conn + sizeof(PyObject)))[0]


cdef class Handle:
    """A connection whose ``sqlite3 *`` this module may use (``open_handle`` made it)."""
    cdef object conn
    cdef sqlite_db *db

    cdef int check(self) except -1:
        """Before each use: the connection is still open, in this thread (Python's checks,
        ProgrammingError otherwise), and still the one checked."""
        self.conn.cursor()  # the sqlite3 module's checks of the thread and of a close
        if _pointer_of(self.conn) != self.db:
            raise sqlite3.ProgrammingError("the ledger's connection changed")
        return 0


def open_handle(conn):
    """A Handle on ``conn`` (a sqlite3.Connection opened after ``watch``), or why the C API
    cannot serve it (a str): the twin writes then."""
    if watch() is not None:
        return _unavailable
    if not isinstance(conn, sqlite3.Connection):
        return "not a sqlite3.Connection"
    if type(conn).__basicsize__ < <Py_ssize_t>(sizeof(PyObject) + sizeof(void *)):
        return "the sqlite3.Connection layout is not CPython's"
    cdef sqlite_db *db = _pointer_of(conn)
    if db == NULL or not tl_was_opened(db):
        return "the connection's handle was not seen opening (layout, or opened before watch)"
    cdef const char *name = tl_api.db_filename(db, "main")
    try:
        python_name = conn.execute("PRAGMA database_list").fetchone()[2]
        same_name = name != NULL and <bytes>name == python_name.encode()
        same_state = (tl_api.get_autocommit(db) != 0) == (not conn.in_transaction)
    except (sqlite3.Error, UnicodeError, TypeError):
        return "the connection could not be checked"
    if not (same_name and same_state):
        return "SQLite and the sqlite3 module disagree about the connection"
    cdef Handle handle = Handle.__new__(Handle)
    handle.conn = conn
    handle.db = db
    return handle


# The names the sqlite3 module gives result codes (Python 3.11 and later set them on its
# exceptions, with the extended code): the primary ones here (the module's constants of
# small values mix in the authorizer's), the extended ones from its constants.
_NAMES = {
    1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT",
    5: "SQLITE_BUSY", 6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY",
    9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR", 11: "SQLITE_CORRUPT", 12: "SQLITE_NOTFOUND",
    13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 16: "SQLITE_EMPTY",
    17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG", 19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH",
    21: "SQLITE_MISUSE", 22: "SQLITE_NOLFS", 23: "SQLITE_AUTH", 24: "SQLITE_FORMAT",
    25: "SQLITE_RANGE", 26: "SQLITE_NOTADB",
}
_NAMES.update({value: name for name, value in vars(sqlite3).items()
               if name.startswith("SQLITE_") and type(value) is int and value > 255
               and value & 0xff in _NAMES})
_CODES_ON_ERRORS = hasattr(sqlite3, "SQLITE_CONSTRAINT_NOTNULL")  # 3.11 and later


def _error_class(int primary):
    """The exception class the _sqlite3 module raises for a primary result code."""
    if primary in (2, 12):
        return sqlite3.InternalError
    if primary == 7:
        return MemoryError
    if primary in (1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17):
        return sqlite3.OperationalError
    if primary == 18:
        return sqlite3.DataError
    if primary in (19, 20):
        return sqlite3.IntegrityError
    if primary in (21, 25):
        return sqlite3.InterfaceError
    return sqlite3.DatabaseError


cdef object _error(sqlite_db *db, int code):
    """The exception the sqlite3 module would raise after ``code`` on ``db``."""
    cdef const char *text = tl_api.errmsg(db)
    cdef int extended = tl_api.extended_errcode(db)
    message = text.decode("utf-8", "replace") if text != NULL else "unknown error"
    exc = _error_class(code & 0xff)(message)
    if _CODES_ON_ERRORS and isinstance(exc, sqlite3.Error):
        exc.sqlite_errorcode = extended
        exc.sqlite_errorname = _NAMES.get(extended, "unknown")
    return exc


cdef class Batch:
    """Usage rows waiting to be written, held in C: UsageRow tuples (``extend``) or the
    rows the compiled Claude reader built (``add_packed``).  ``write`` upserts them with
    ``sql`` (13 parameters, tokline/ledger/store.py _UPSERT) in key order, ties in the
    order they came, as the twin's ``executemany`` of a stable sort does, then holds none."""
    cdef Handle handle
    cdef sqlite_stmt *stmt
    cdef tl_row *rows
    cdef Py_ssize_t count
    cdef Py_ssize_t cap
    cdef int64_t lowest_ts

    def __cinit__(self, Handle handle not None, str sql not None):
        self.stmt = NULL
        self.rows = NULL
        self.count = 0
        self.cap = 0
        handle.check()
        self.handle = handle
        encoded = sql.encode()
        cdef int rc = tl_api.prepare_v2(handle.db, encoded, -1, &self.stmt, NULL)
        if rc != TL_SQLITE_OK:
            raise _error(handle.db, rc)
        if tl_api.bind_parameter_count(self.stmt) != ROW_VALUES \
                or tl_api.db_handle(self.stmt) != handle.db:
            raise ValueError(f"a usage upsert takes {ROW_VALUES} values")

    def __dealloc__(self):
        if self.stmt != NULL:
            tl_api.finalize(self.stmt)  # after a close, this ends it (sqlite3_close_v2)
        free(self.rows)

    def close(self):
        """Finalize the statement (a closed batch cannot write)."""
        if self.stmt != NULL:
            tl_api.finalize(self.stmt)
            self.stmt = NULL

    def __len__(self):
        return self.count

    @property
    def min_ts(self):
        """The earliest ts_ms of the rows held; None when none are."""
        return self.lowest_ts if self.count else None

    cdef int _room(self, Py_ssize_t n) except -1:
        """Make room for ``n`` more rows (at self.rows + self.count)."""
        while self.count + n > self.cap:
            if not grow(<void **>&self.rows, &self.cap, sizeof(tl_row), 1024):
                raise MemoryError()
        return 0

    cdef void _took(self, Py_ssize_t n) noexcept:
        """Count ``n`` rows written at the end as held."""
        cdef Py_ssize_t i
        cdef int64_t ts
        for i in range(self.count, self.count + n):
            ts = self.rows[i].v[V_TS].i
            if i == 0 or ts < self.lowest_ts:
                self.lowest_ts = ts
        self.count += n

    def extend(self, rows):
        """Add UsageRow tuples: each value an int, a float or None."""
        cdef tl_row *r
        cdef object value
        cdef Py_ssize_t j
        for row in rows:
            if not PyTuple_Check(row) or PyTuple_GET_SIZE(row) != ROW_VALUES:
                raise TypeError(f"a usage row is a tuple of {ROW_VALUES} values")
            self._room(1)
            r = self.rows + self.count
            r.real = 0
            r.null = 0
            for j in range(ROW_VALUES):
                value = <object>PyTuple_GET_ITEM(row, j)
                if value is None:
                    r.null |= 1u << j
                elif PyFloat_Check(value):
                    r.real |= 1u << j
                    r.v[j].d = PyFloat_AS_DOUBLE(value)
                elif PyLong_Check(value):
                    r.v[j].i = PyLong_AsLongLong(value)
                else:
                    raise TypeError(f"a usage row value is an int, a float or None, not "
                                    f"{type(value).__name__}")
            if r.null & 3 or r.real & 3:
                raise TypeError("a usage row's key and time are ints")
            self._took(1)

    def add_packed(self, bytes packed not None):
        """Add rows the compiled Claude reader built (ext/_rows.pxd layout)."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(packed)
        cdef Py_ssize_t n = size // <Py_ssize_t>sizeof(tl_row)
        if n * <Py_ssize_t>sizeof(tl_row) != size:
            raise ValueError("not whole rows")
        if n:
            self._room(n)
            memcpy(self.rows + self.count, PyBytes_AS_STRING(packed), size)
            self._took(n)

    def write(self, bint sort=True):
        """Upsert the rows held (in key order, ties as they came; ``sort`` False: as they
        came, which benchmarks compare) and hold none."""
        cdef Py_ssize_t n = self.count, i
        cdef tl_order *order
        cdef int rc
        cdef sqlite_db *db = self.handle.db
        if self.stmt == NULL:
            raise sqlite3.ProgrammingError("the batch is closed")
        self.handle.check()
        self.count = 0
        if n == 0:
            return
        order = <tl_order *>malloc(n * sizeof(tl_order))
        if order == NULL:
            raise MemoryError()
        try:
            with nogil:
                for i in range(n):
                    order[i].key = self.rows[i].v[0].i
                    order[i].at = i
                if sort:
                    qsort(order, n, sizeof(tl_order), tl_by_key)
                rc = tl_write(self.stmt, self.rows, order, n)
            if rc != TL_SQLITE_DONE:
                exc = _error(db, rc)
                tl_api.reset(self.stmt)
                raise exc
        finally:
            free(order)
