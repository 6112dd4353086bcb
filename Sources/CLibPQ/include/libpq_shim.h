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
#define PQprepare orch_PQprepare
#define PQexecPrepared orch_PQexecPrepared
#define PQsendQueryParams orch_PQsendQueryParams
#define PQsendPrepare orch_PQsendPrepare
#define PQsendQueryPrepared orch_PQsendQueryPrepared
#define PQgetResult orch_PQgetResult
#define PQenterPipelineMode orch_PQenterPipelineMode
#define PQexitPipelineMode orch_PQexitPipelineMode
#define PQpipelineSync orch_PQpipelineSync

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
#undef PQprepare
#undef PQexecPrepared
#undef PQsendQueryParams
#undef PQsendPrepare
#undef PQsendQueryPrepared
#undef PQgetResult
#undef PQenterPipelineMode
#undef PQexitPipelineMode
#undef PQpipelineSync

/// Why libpq could not be loaded (no libpq.so.5 on this machine, or a symbol missing from it); NULL once it is.
const char *orch_pq_load_error(void);

/// Whether this libpq has pipeline mode (libpq 14 and later); without it the orch_PQ...Pipeline... calls return 0.
int orch_pq_has_pipeline(void);

#endif
