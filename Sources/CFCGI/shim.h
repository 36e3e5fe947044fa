#ifndef LKJWT_CFCGI_SHIM_H
#define LKJWT_CFCGI_SHIM_H
/* Only the thread-safe request API; fcgi_stdio.h would redefine stdio. */
#include <fcgiapp.h>
#endif
