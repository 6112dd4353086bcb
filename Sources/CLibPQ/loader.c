// Loads libpq the first time a PostgreSQL store is used. Each orch_PQ... function is the libpq function of the same
// name, called through a pointer looked up once; the types come from libpq's header.
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *load_error = "libpq was not loaded yet";

static __typeof__(PQstatus) *p_PQstatus;
static __typeof__(PQreset) *p_PQreset;
static __typeof__(PQfreemem) *p_PQfreemem;
static __typeof__(PQfinish) *p_PQfinish;
static __typeof__(PQconnectdbParams) *p_PQconnectdbParams;
static __typeof__(PQunescapeBytea) *p_PQunescapeBytea;
static __typeof__(PQsocket) *p_PQsocket;
static __typeof__(PQsetNoticeProcessor) *p_PQsetNoticeProcessor;
static __typeof__(PQresultStatus) *p_PQresultStatus;
static __typeof__(PQresultErrorField) *p_PQresultErrorField;
static __typeof__(PQntuples) *p_PQntuples;
static __typeof__(PQnotifies) *p_PQnotifies;
static __typeof__(PQnfields) *p_PQnfields;
static __typeof__(PQgetvalue) *p_PQgetvalue;
static __typeof__(PQgetlength) *p_PQgetlength;
static __typeof__(PQgetisnull) *p_PQgetisnull;
static __typeof__(PQftype) *p_PQftype;
static __typeof__(PQfname) *p_PQfname;
static __typeof__(PQexecParams) *p_PQexecParams;
static __typeof__(PQexec) *p_PQexec;
static __typeof__(PQerrorMessage) *p_PQerrorMessage;
static __typeof__(PQconsumeInput) *p_PQconsumeInput;
static __typeof__(PQconninfoFree) *p_PQconninfoFree;
static __typeof__(PQconndefaults) *p_PQconndefaults;
static __typeof__(PQcmdTuples) *p_PQcmdTuples;
static __typeof__(PQcmdStatus) *p_PQcmdStatus;
static __typeof__(PQclear) *p_PQclear;
static __typeof__(PQbackendPID) *p_PQbackendPID;
static __typeof__(PQprepare) *p_PQprepare;
static __typeof__(PQexecPrepared) *p_PQexecPrepared;
static __typeof__(PQsendQueryParams) *p_PQsendQueryParams;
static __typeof__(PQsendPrepare) *p_PQsendPrepare;
static __typeof__(PQsendQueryPrepared) *p_PQsendQueryPrepared;
static __typeof__(PQgetResult) *p_PQgetResult;
static __typeof__(PQenterPipelineMode) *p_PQenterPipelineMode;
static __typeof__(PQexitPipelineMode) *p_PQexitPipelineMode;
static __typeof__(PQpipelineSync) *p_PQpipelineSync;

static void load(void) {
    void *library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        load_error = "cannot load libpq.so.5 (PostgreSQL's client library; Debian's package libpq5)";
        return;
    }
    if (!(p_PQstatus = (__typeof__(PQstatus) *)dlsym(library, "PQstatus"))) { load_error = "libpq.so.5 has no PQstatus"; return; }
    if (!(p_PQreset = (__typeof__(PQreset) *)dlsym(library, "PQreset"))) { load_error = "libpq.so.5 has no PQreset"; return; }
    if (!(p_PQfreemem = (__typeof__(PQfreemem) *)dlsym(library, "PQfreemem"))) { load_error = "libpq.so.5 has no PQfreemem"; return; }
    if (!(p_PQfinish = (__typeof__(PQfinish) *)dlsym(library, "PQfinish"))) { load_error = "libpq.so.5 has no PQfinish"; return; }
    if (!(p_PQconnectdbParams = (__typeof__(PQconnectdbParams) *)dlsym(library, "PQconnectdbParams"))) { load_error = "libpq.so.5 has no PQconnectdbParams"; return; }
    if (!(p_PQunescapeBytea = (__typeof__(PQunescapeBytea) *)dlsym(library, "PQunescapeBytea"))) { load_error = "libpq.so.5 has no PQunescapeBytea"; return; }
    if (!(p_PQsocket = (__typeof__(PQsocket) *)dlsym(library, "PQsocket"))) { load_error = "libpq.so.5 has no PQsocket"; return; }
    if (!(p_PQsetNoticeProcessor = (__typeof__(PQsetNoticeProcessor) *)dlsym(library, "PQsetNoticeProcessor"))) { load_error = "libpq.so.5 has no PQsetNoticeProcessor"; return; }
    if (!(p_PQresultStatus = (__typeof__(PQresultStatus) *)dlsym(library, "PQresultStatus"))) { load_error = "libpq.so.5 has no PQresultStatus"; return; }
    if (!(p_PQresultErrorField = (__typeof__(PQresultErrorField) *)dlsym(library, "PQresultErrorField"))) { load_error = "libpq.so.5 has no PQresultErrorField"; return; }
    if (!(p_PQntuples = (__typeof__(PQntuples) *)dlsym(library, "PQntuples"))) { load_error = "libpq.so.5 has no PQntuples"; return; }
    if (!(p_PQnotifies = (__typeof__(PQnotifies) *)dlsym(library, "PQnotifies"))) { load_error = "libpq.so.5 has no PQnotifies"; return; }
    if (!(p_PQnfields = (__typeof__(PQnfields) *)dlsym(library, "PQnfields"))) { load_error = "libpq.so.5 has no PQnfields"; return; }
    if (!(p_PQgetvalue = (__typeof__(PQgetvalue) *)dlsym(library, "PQgetvalue"))) { load_error = "libpq.so.5 has no PQgetvalue"; return; }
    if (!(p_PQgetlength = (__typeof__(PQgetlength) *)dlsym(library, "PQgetlength"))) { load_error = "libpq.so.5 has no PQgetlength"; return; }
    if (!(p_PQgetisnull = (__typeof__(PQgetisnull) *)dlsym(library, "PQgetisnull"))) { load_error = "libpq.so.5 has no PQgetisnull"; return; }
    if (!(p_PQftype = (__typeof__(PQftype) *)dlsym(library, "PQftype"))) { load_error = "libpq.so.5 has no PQftype"; return; }
    if (!(p_PQfname = (__typeof__(PQfname) *)dlsym(library, "PQfname"))) { load_error = "libpq.so.5 has no PQfname"; return; }
    if (!(p_PQexecParams = (__typeof__(PQexecParams) *)dlsym(library, "PQexecParams"))) { load_error = "libpq.so.5 has no PQexecParams"; return; }
    if (!(p_PQexec = (__typeof__(PQexec) *)dlsym(library, "PQexec"))) { load_error = "libpq.so.5 has no PQexec"; return; }
    if (!(p_PQerrorMessage = (__typeof__(PQerrorMessage) *)dlsym(library, "PQerrorMessage"))) { load_error = "libpq.so.5 has no PQerrorMessage"; return; }
    if (!(p_PQconsumeInput = (__typeof__(PQconsumeInput) *)dlsym(library, "PQconsumeInput"))) { load_error = "libpq.so.5 has no PQconsumeInput"; return; }
    if (!(p_PQconninfoFree = (__typeof__(PQconninfoFree) *)dlsym(library, "PQconninfoFree"))) { load_error = "libpq.so.5 has no PQconninfoFree"; return; }
    if (!(p_PQconndefaults = (__typeof__(PQconndefaults) *)dlsym(library, "PQconndefaults"))) { load_error = "libpq.so.5 has no PQconndefaults"; return; }
    if (!(p_PQcmdTuples = (__typeof__(PQcmdTuples) *)dlsym(library, "PQcmdTuples"))) { load_error = "libpq.so.5 has no PQcmdTuples"; return; }
    if (!(p_PQcmdStatus = (__typeof__(PQcmdStatus) *)dlsym(library, "PQcmdStatus"))) { load_error = "libpq.so.5 has no PQcmdStatus"; return; }
    if (!(p_PQclear = (__typeof__(PQclear) *)dlsym(library, "PQclear"))) { load_error = "libpq.so.5 has no PQclear"; return; }
    if (!(p_PQbackendPID = (__typeof__(PQbackendPID) *)dlsym(library, "PQbackendPID"))) { load_error = "libpq.so.5 has no PQbackendPID"; return; }
    if (!(p_PQprepare = (__typeof__(PQprepare) *)dlsym(library, "PQprepare"))) { load_error = "libpq.so.5 has no PQprepare"; return; }
    if (!(p_PQexecPrepared = (__typeof__(PQexecPrepared) *)dlsym(library, "PQexecPrepared"))) { load_error = "libpq.so.5 has no PQexecPrepared"; return; }
    if (!(p_PQsendQueryParams = (__typeof__(PQsendQueryParams) *)dlsym(library, "PQsendQueryParams"))) { load_error = "libpq.so.5 has no PQsendQueryParams"; return; }
    if (!(p_PQsendPrepare = (__typeof__(PQsendPrepare) *)dlsym(library, "PQsendPrepare"))) { load_error = "libpq.so.5 has no PQsendPrepare"; return; }
    if (!(p_PQsendQueryPrepared = (__typeof__(PQsendQueryPrepared) *)dlsym(library, "PQsendQueryPrepared"))) { load_error = "libpq.so.5 has no PQsendQueryPrepared"; return; }
    if (!(p_PQgetResult = (__typeof__(PQgetResult) *)dlsym(library, "PQgetResult"))) { load_error = "libpq.so.5 has no PQgetResult"; return; }
    // Pipeline mode came with libpq 14; without it, statements are sent one at a time.
    p_PQenterPipelineMode = (__typeof__(PQenterPipelineMode) *)dlsym(library, "PQenterPipelineMode");
    p_PQexitPipelineMode = (__typeof__(PQexitPipelineMode) *)dlsym(library, "PQexitPipelineMode");
    p_PQpipelineSync = (__typeof__(PQpipelineSync) *)dlsym(library, "PQpipelineSync");
    load_error = NULL;
}

const char *orch_pq_load_error(void) {
    pthread_once(&once, load);
    return load_error;
}


ConnStatusType orch_PQstatus(const PGconn *conn) {
    pthread_once(&once, load);
    return p_PQstatus(conn);
}

void orch_PQreset(PGconn *conn) {
    pthread_once(&once, load);
    p_PQreset(conn);
}

void orch_PQfreemem(void *ptr) {
    pthread_once(&once, load);
    p_PQfreemem(ptr);
}

void orch_PQfinish(PGconn *conn) {
    pthread_once(&once, load);
    p_PQfinish(conn);
}

PGconn * orch_PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname) {
    pthread_once(&once, load);
    return p_PQconnectdbParams(keywords, values, expand_dbname);
}

unsigned char * orch_PQunescapeBytea(const unsigned char *strtext, size_t *retbuflen) {
    pthread_once(&once, load);
    return p_PQunescapeBytea(strtext, retbuflen);
}

int orch_PQsocket(const PGconn *conn) {
    pthread_once(&once, load);
    return p_PQsocket(conn);
}

PQnoticeProcessor orch_PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg) {
    pthread_once(&once, load);
    return p_PQsetNoticeProcessor(conn, proc, arg);
}

ExecStatusType orch_PQresultStatus(const PGresult *res) {
    pthread_once(&once, load);
    return p_PQresultStatus(res);
}

char * orch_PQresultErrorField(const PGresult *res, int fieldcode) {
    pthread_once(&once, load);
    return p_PQresultErrorField(res, fieldcode);
}

int orch_PQntuples(const PGresult *res) {
    pthread_once(&once, load);
    return p_PQntuples(res);
}

PGnotify * orch_PQnotifies(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQnotifies(conn);
}

int orch_PQnfields(const PGresult *res) {
    pthread_once(&once, load);
    return p_PQnfields(res);
}

char * orch_PQgetvalue(const PGresult *res, int tup_num, int field_num) {
    pthread_once(&once, load);
    return p_PQgetvalue(res, tup_num, field_num);
}

int orch_PQgetlength(const PGresult *res, int tup_num, int field_num) {
    pthread_once(&once, load);
    return p_PQgetlength(res, tup_num, field_num);
}

int orch_PQgetisnull(const PGresult *res, int tup_num, int field_num) {
    pthread_once(&once, load);
    return p_PQgetisnull(res, tup_num, field_num);
}

Oid orch_PQftype(const PGresult *res, int field_num) {
    pthread_once(&once, load);
    return p_PQftype(res, field_num);
}

char * orch_PQfname(const PGresult *res, int field_num) {
    pthread_once(&once, load);
    return p_PQfname(res, field_num);
}

PGresult * orch_PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes, const char *const *paramValues, const int *paramLengths, const int *paramFormats, int resultFormat) {
    pthread_once(&once, load);
    return p_PQexecParams(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}

PGresult * orch_PQexec(PGconn *conn, const char *query) {
    pthread_once(&once, load);
    return p_PQexec(conn, query);
}

char * orch_PQerrorMessage(const PGconn *conn) {
    pthread_once(&once, load);
    return p_PQerrorMessage(conn);
}

int orch_PQconsumeInput(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQconsumeInput(conn);
}

void orch_PQconninfoFree(PQconninfoOption *connOptions) {
    pthread_once(&once, load);
    p_PQconninfoFree(connOptions);
}

PQconninfoOption * orch_PQconndefaults(void) {
    pthread_once(&once, load);
    return p_PQconndefaults();
}

char * orch_PQcmdTuples(PGresult *res) {
    pthread_once(&once, load);
    return p_PQcmdTuples(res);
}

char * orch_PQcmdStatus(PGresult *res) {
    pthread_once(&once, load);
    return p_PQcmdStatus(res);
}

void orch_PQclear(PGresult *res) {
    pthread_once(&once, load);
    p_PQclear(res);
}

int orch_PQbackendPID(const PGconn *conn) {
    pthread_once(&once, load);
    return p_PQbackendPID(conn);
}

PGresult * orch_PQprepare(PGconn *conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes) {
    pthread_once(&once, load);
    return p_PQprepare(conn, stmtName, query, nParams, paramTypes);
}

PGresult * orch_PQexecPrepared(PGconn *conn, const char *stmtName, int nParams, const char *const *paramValues,
                               const int *paramLengths, const int *paramFormats, int resultFormat) {
    pthread_once(&once, load);
    return p_PQexecPrepared(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}

int orch_PQsendQueryParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                           const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                           int resultFormat) {
    pthread_once(&once, load);
    return p_PQsendQueryParams(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}

int orch_PQsendPrepare(PGconn *conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes) {
    pthread_once(&once, load);
    return p_PQsendPrepare(conn, stmtName, query, nParams, paramTypes);
}

int orch_PQsendQueryPrepared(PGconn *conn, const char *stmtName, int nParams, const char *const *paramValues,
                             const int *paramLengths, const int *paramFormats, int resultFormat) {
    pthread_once(&once, load);
    return p_PQsendQueryPrepared(conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat);
}

PGresult * orch_PQgetResult(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQgetResult(conn);
}

int orch_pq_has_pipeline(void) {
    pthread_once(&once, load);
    return p_PQenterPipelineMode && p_PQexitPipelineMode && p_PQpipelineSync;
}

int orch_PQenterPipelineMode(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQenterPipelineMode ? p_PQenterPipelineMode(conn) : 0;
}

int orch_PQexitPipelineMode(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQexitPipelineMode ? p_PQexitPipelineMode(conn) : 0;
}

int orch_PQpipelineSync(PGconn *conn) {
    pthread_once(&once, load);
    return p_PQpipelineSync ? p_PQpipelineSync(conn) : 0;
}
