#ifndef LKJWT_CCURL_SHIM_H
#define LKJWT_CCURL_SHIM_H
#include <curl/curl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* libcurl is not linked but loaded on first use (CurlLibrary.swift): with its two dozen dependent
   libraries it cost a plain CGI request 7 ms before main. Its functions are reached through the
   pointers CurlLibrary resolves. curl_easy_setopt and curl_easy_getinfo are variadic, which Swift
   cannot call; these typed wrappers call them. */
typedef CURLcode (*lk_curl_setopt_function)(CURL *handle, CURLoption option, ...);
typedef CURLcode (*lk_curl_getinfo_function)(CURL *handle, CURLINFO info, ...);

static inline CURLcode lk_curl_setopt_long_via(lk_curl_setopt_function setopt, CURL *handle, CURLoption option, long value) {
    return setopt(handle, option, value);
}
static inline CURLcode lk_curl_setopt_string_via(lk_curl_setopt_function setopt, CURL *handle, CURLoption option, const char *value) {
    return setopt(handle, option, value);
}
static inline CURLcode lk_curl_setopt_slist_via(lk_curl_setopt_function setopt, CURL *handle, CURLoption option, struct curl_slist *value) {
    return setopt(handle, option, value);
}
static inline CURLcode lk_curl_setopt_pointer_via(lk_curl_setopt_function setopt, CURL *handle, CURLoption option, void *value) {
    return setopt(handle, option, value);
}
typedef size_t (*lk_curl_data_callback)(char *data, size_t size, size_t count, void *context);
static inline CURLcode lk_curl_setopt_data_callback_via(lk_curl_setopt_function setopt, CURL *handle, CURLoption option, lk_curl_data_callback callback) {
    return setopt(handle, option, callback);
}
typedef curl_socket_t (*lk_curl_opensocket_callback)(void *context, curlsocktype purpose, struct curl_sockaddr *address);
static inline CURLcode lk_curl_setopt_opensocket_callback_via(lk_curl_setopt_function setopt, CURL *handle, lk_curl_opensocket_callback callback) {
    return setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
}
static inline CURLcode lk_curl_getinfo_long_via(lk_curl_getinfo_function getinfo, CURL *handle, CURLINFO info, long *value) {
    return getinfo(handle, info, value);
}

/* The IP address a socket is about to connect to, as 4 (IPv4) or 16 (IPv6) bytes copied to `out`;
   returns that count, or 0 for any other family. curl's `addr` member is declared as a plain
   struct sockaddr but has room for the whole address of its family. */
static inline int lk_curl_sockaddr_ip(const struct curl_sockaddr *address, unsigned char out[16], int *port) {
    if (address->family == AF_INET && address->addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)&address->addr;
        memcpy(out, &in4->sin_addr, 4);
        *port = ntohs(in4->sin_port);
        return 4;
    }
    if (address->family == AF_INET6 && address->addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&address->addr;
        memcpy(out, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        return 16;
    }
    return 0;
}
#endif
