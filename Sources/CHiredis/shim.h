#ifndef LKJWT_CHIREDIS_SHIM_H
#define LKJWT_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>

/* redisCommand is variadic and format-string based; the argv form is binary-safe, and this
   wrapper gives its untyped reply the type it always has in a blocking context. */
static inline redisReply *lk_redis_command(redisContext *context, int count, const char **arguments, const size_t *lengths) {
    return (redisReply *)redisCommandArgv(context, count, arguments, lengths);
}

/* errstr is a fixed array, which Swift imports as a 128-element tuple. */
static inline const char *lk_redis_error_text(const redisContext *context) {
    return context->errstr;
}
#endif
