// libpq's client API. pkg-config (libpq.pc) normally supplies -I/usr/include/postgresql; Debian also has the
// headers one folder down, so the build still finds them where pkg-config is absent.
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
