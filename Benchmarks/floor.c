// The floor: the least any tool can do per file with the same worker and the same concurrency. Keeps CONCURRENCY
// `posix_spawn("/bin/true")` children running at once; as each exits (waitpid), renames its file from IN to OUT
// and starts the next. No claim, no bookkeeping, no durability: what is left of the daemon's work once all of
// that is free.
//
//   floor IN OUT CONCURRENCY   prints "floor: N files in S s = R files/s", then the CPU it and its workers used
//                              per file: "floor cpu: own X ms/file, workers Y ms/file" (getrusage)
#define _GNU_SOURCE
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: floor IN OUT CONCURRENCY\n"); return 64; }
    const char *in = argv[1], *out = argv[2];
    int concurrency = atoi(argv[3]);
    if (concurrency < 1 || concurrency > 64) { fprintf(stderr, "floor: CONCURRENCY must be 1-64\n"); return 64; }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    DIR *d = opendir(in);
    if (!d) { perror(in); return 1; }
    char *args[] = {"/bin/true", NULL};
    pid_t pids[64] = {0};
    char names[64][256];
    int running = 0, n = 0, more = 1;
    while (more || running > 0) {
        while (more && running < concurrency) {
            struct dirent *e = readdir(d);
            if (!e) { more = 0; break; }
            if (e->d_name[0] == '.') continue;
            int slot = 0;
            while (pids[slot] != 0) slot++;
            if (posix_spawn(&pids[slot], "/bin/true", NULL, NULL, args, environ)) { perror("posix_spawn"); return 1; }
            snprintf(names[slot], sizeof names[slot], "%s", e->d_name);
            running++;
        }
        if (running == 0) break;
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) { perror("waitpid"); return 1; }
        for (int slot = 0; slot < 64; slot++) {
            if (pids[slot] != pid) continue;
            char f[4096], t[4096];
            snprintf(f, sizeof f, "%s/%s", in, names[slot]);
            snprintf(t, sizeof t, "%s/%s", out, names[slot]);
            if (rename(f, t)) { perror(f); return 1; }
            pids[slot] = 0;
            running--;
            n++;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("floor: %d files in %.3f s = %.0f files/s\n", n, s, n / s);
    struct rusage own, workers;
    getrusage(RUSAGE_SELF, &own);
    getrusage(RUSAGE_CHILDREN, &workers);
    double own_ms = (own.ru_utime.tv_sec + own.ru_stime.tv_sec) * 1e3 + (own.ru_utime.tv_usec + own.ru_stime.tv_usec) / 1e3;
    double workers_ms = (workers.ru_utime.tv_sec + workers.ru_stime.tv_sec) * 1e3
        + (workers.ru_utime.tv_usec + workers.ru_stime.tv_usec) / 1e3;
    printf("floor cpu: own %.3f ms/file, workers %.3f ms/file\n", own_ms / n, workers_ms / n);
    return 0;
}
