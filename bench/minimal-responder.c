/*
 * The baseline for bench/run: the least a libfcgi responder can do. Answers GET …/healthz with an
 * empty 200 and anything else with 404, on the socket spawn-fcgi hands over as fd 0, from as many
 * threads as lkjwt-fcgi uses. Every thread calls FCGX_Accept_r concurrently, without the accept
 * mutex of libfcgi's examples/threaded.c (it stalls kept connections; see FASTCGI-NOTES.md), as
 * lkjwt-fcgi does. Started as a plain CGI program (stdin is not a listening socket), it answers the
 * one request of its environment the same way: the baseline of the CGI start-up figure.
 *
 * Build: gcc -O2 -pthread -o minimal-responder minimal-responder.c -lfcgi
 * Run:   spawn-fcgi -n -s /path/to.sock -- ./minimal-responder [threads, default 16]
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *text, const char *suffix)
{
    size_t text_length = strlen(text), suffix_length = strlen(suffix);
    return text_length >= suffix_length && strcmp(text + text_length - suffix_length, suffix) == 0;
}

static const char *answer(const char *method, const char *script_name)
{
    if (method && script_name && strcmp(method, "GET") == 0 && ends_with(script_name, "/healthz"))
        return "Status: 200 OK\r\n\r\n";
    return "Status: 404 Not Found\r\n\r\n";
}

static void *serve(void *unused)
{
    (void)unused;
    FCGX_Request request;
    if (FCGX_InitRequest(&request, 0, 0) != 0)
        return NULL;
    while (FCGX_Accept_r(&request) >= 0) {
        FCGX_PutS(answer(FCGX_GetParam("REQUEST_METHOD", request.envp), FCGX_GetParam("SCRIPT_NAME", request.envp)),
                  request.out);
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 16;
    if (threads < 1) {
        fprintf(stderr, "usage: %s [threads]\n", argv[0]);
        return 2;
    }
    if (FCGX_IsCGI()) {
        fputs(answer(getenv("REQUEST_METHOD"), getenv("SCRIPT_NAME")), stdout);
        return 0;
    }
    if (FCGX_Init() != 0)
        return 1;
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int i = 0; i < threads; i++)
        pthread_create(&ids[i], NULL, serve, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    return 0;
}
