// The burst's harness: renames every file of STAGE into INBOX, then waits until DONE holds COUNT entries and the
// store records COUNT jobs done and moved; prints the two times (Unix seconds): the first rename began, and all
// was recorded. In C, with an inotify watch on DONE (the listing again after a quiet second) and the store read
// only once DONE is full, so that the
// harness takes next to nothing from the two cores it measures on (the Python helpers it replaces, a mover and a
// store poller started through a pyenv shim, took 5-8% of them, which the floor, timing itself, never paid).
//
//   burst STAGE INBOX DONE COUNT DB    prints "T0 T1"; exit 1 after 600 s without them. An empty STAGE only waits
//                                      (the backlog: files in Inbox before the daemon starts). DB "-": no store
//                                      to read (a PostgreSQL store: Benchmarks/multinode.sh asks it after)
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long recorded(const char *db) {
    sqlite3 *h;
    long done = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(h, 5000);
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(h, "select count(*) from job where state='done' and final_path is not null", -1, &s, NULL) == SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW) done = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
    }
    sqlite3_close(h);
    return done;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: burst STAGE INBOX DONE COUNT DB\n"); return 64; }
    const char *stage = argv[1], *inbox = argv[2], *done = argv[3], *db = argv[5];
    long count = atol(argv[4]);
    int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch < 0 || inotify_add_watch(watch, done, IN_MOVED_TO) < 0) { perror(done); return 1; }
    // The names first, as the Python mover did (os.listdir), so that only the renames are timed.
    DIR *d = opendir(stage);
    if (!d) { perror(stage); return 1; }
    size_t n = 0, cap = 1024;
    char **names = malloc(cap * sizeof *names);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = realloc(names, (cap *= 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    double t0 = wall();
    char from[PATH_MAX], to[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(from, sizeof from, "%s/%s", stage, names[i]);
        snprintf(to, sizeof to, "%s/%s", inbox, names[i]);
        if (rename(from, to)) { perror(from); return 1; }
    }
    // Counted from the listing once, then by the watch's events: no scan of a growing folder every few ms.
    long arrived = entries(done);
    char buf[1 << 16];
    double deadline = t0 + 600;
    while (arrived < count) {
        struct pollfd p = {watch, POLLIN, 0};
        int ready = poll(&p, 1, 1000);
        if (wall() > deadline) { fprintf(stderr, "burst: timed out with %ld of %ld in %s\n", arrived, count, done); return 1; }
        if (ready <= 0) {
            arrived = entries(done);  // A quiet second: the listing again (an overflowed queue loses events).
            continue;
        }
        for (ssize_t got; (got = read(watch, buf, sizeof buf)) > 0;) {
            for (char *at = buf; at < buf + got;) {
                struct inotify_event *ev = (struct inotify_event *)at;
                if (ev->mask & IN_Q_OVERFLOW) arrived = entries(done) - 1;
                arrived++;
                at += sizeof *ev + ev->len;
            }
        }
    }
    // The store records where each file went just after its move: wait for that too.
    while (strcmp(db, "-") != 0 && recorded(db) < count) {
        if (wall() > deadline) { fprintf(stderr, "burst: timed out waiting for the store\n"); return 1; }
        usleep(2000);
    }
    printf("%.6f %.6f\n", t0, wall());
    return 0;
}
