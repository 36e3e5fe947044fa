#ifndef LKJWT_CRESOLV_SHIM_H
#define LKJWT_CRESOLV_SHIM_H
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <netdb.h>
#include <string.h>

/* One SRV query with a private resolver state, so that threads never share one; the state is
   read from /etc/resolv.conf on every call (a network namespace's own file included).
   Returns the answer length, or -1 with *failure set to the resolver's h_errno. */
static inline int lk_query_srv(const char *name, unsigned char *answer, int length, int *failure) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) {
        *failure = NO_RECOVERY;
        return -1;
    }
    int count = res_nquery(&state, name, ns_c_in, ns_t_srv, answer, length);
    *failure = state.res_h_errno;
    res_nclose(&state);
    return count;
}

/* The ns_msg and ns_rr accessors are macros, which Swift cannot call. */
static inline int lk_ns_msg_count(const ns_msg *message, ns_sect section) { return ns_msg_count(*message, section); }
static inline int lk_ns_rr_type(const ns_rr *record) { return ns_rr_type(*record); }
static inline unsigned long lk_ns_rr_ttl(const ns_rr *record) { return ns_rr_ttl(*record); }
static inline int lk_ns_rr_rdlen(const ns_rr *record) { return ns_rr_rdlen(*record); }
static inline const unsigned char *lk_ns_rr_rdata(const ns_rr *record) { return ns_rr_rdata(*record); }
#endif
