#ifndef LKJWT_CSQLITE_SHIM_H
#define LKJWT_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a cast macro, which Swift does not import; bound text must be copied because
   Swift strings are only borrowed for the duration of the bind call. */
static inline sqlite3_destructor_type lk_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}
#endif
