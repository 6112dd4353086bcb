// libpq's client API, loaded on first use (see loader.c). Its declarations come from libpq's own header with each
// function this project calls renamed to `orch_PQ...`, which loader.c defines: the binary does not link libpq, so a
// daemon on SQLite never maps libpq and the TLS and Kerberos libraries it pulls in.
#ifndef ORCH_LIBPQ_H
#define ORCH_LIBPQ_H

#define PQstatus orch_PQstatus
#define PQreset orch_PQreset
#define PQfreemem orch_PQfreemem
#define PQfinish orch_PQfinish
#define PQconnectdbParams orch_PQconnectdbParams
#define PQunescapeBytea orch_PQunescapeBytea
#define PQsocket orch_PQsocket
#define PQsetNoticeProcessor orch_PQsetNoticeProcessor
#define PQresultStatus orch_PQresultStatus
#define PQresultErrorField orch_PQresultErrorField
#define PQntuples orch_PQntuples
#define PQnotifies orch_PQnotifies
#define PQnfields orch_PQnfields
#define PQgetvalue orch_PQgetvalue
#define PQgetlength orch_PQgetlength
#define PQgetisnull orch_PQgetisnull
#define PQftype orch_PQftype
#define PQfname orch_PQfname
#define PQexecParams orch_PQexecParams
#define PQexec orch_PQexec
#define PQerrorMessage orch_PQerrorMessage
#define PQconsumeInput orch_PQconsumeInput
#define PQconninfoFree orch_PQconninfoFree
#define PQconndefaults orch_PQconndefaults
#define PQcmdTuples orch_PQcmdTuples
#define PQcmdStatus orch_PQcmdStatus
#define PQclear orch_PQclear
#define PQbackendPID orch_PQbackendPID

#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif

#undef PQstatus
#undef PQreset
#undef PQfreemem
#undef PQfinish
#undef PQconnectdbParams
#undef PQunescapeBytea
#undef PQsocket
#undef PQsetNoticeProcessor
#undef PQresultStatus
#undef PQresultErrorField
#undef PQntuples
#undef PQnotifies
#undef PQnfields
#undef PQgetvalue
#undef PQgetlength
#undef PQgetisnull
#undef PQftype
#undef PQfname
#undef PQexecParams
#undef PQexec
#undef PQerrorMessage
#undef PQconsumeInput
#undef PQconninfoFree
#undef PQconndefaults
#undef PQcmdTuples
#undef PQcmdStatus
#undef PQclear
#undef PQbackendPID

/// Why libpq could not be loaded (no libpq.so.5 on this machine, or a symbol missing from it); NULL once it is.
const char *orch_pq_load_error(void);

#endif
