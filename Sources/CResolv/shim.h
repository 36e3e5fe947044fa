#ifndef LKJWT_CRESOLV_SHIM_H
#define LKJWT_CRESOLV_SHIM_H
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <netdb.h>
#include <string.h>

/* One SRV query with a private resolver state, so that threads never share one; the state is
   read from /etc/resolv.conf on every call (a network namespace's own file included).
   The whole query takes at most `seconds` (at least 1): one try of each nameserver, whose waits
   glibc sums to at most nscount x retrans, instead of the configured timeout x attempts. Truncated
   answers are used as they are (EDNS0 makes them rare): the TCP retry has no timeout at all.
   Returns the answer length, or -1 with *failure set to the resolver's h_errno. */
static inline int lk_query_srv(const char *name, unsigned char *answer, int length, int seconds, int *failure) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) {
        *failure = NO_RECOVERY;
        return -1;
    }
    int servers = state.nscount > 0 ? state.nscount : 1;
    if (seconds < servers) {
        state.nscount = seconds > 0 ? seconds : 1;
        servers = state.nscount;
    }
    state.retrans = seconds / servers > 0 ? seconds / servers : 1;
    state.retry = 1;
    state.options |= RES_IGNTC | RES_USE_EDNS0;
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
