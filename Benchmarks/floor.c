#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <string.h>
extern char **environ;
int main(int argc, char **argv) {
    const char *in = argv[1], *out = argv[2];
    DIR *d = opendir(in); struct dirent *e; int n = 0;
    struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
    char *args[] = {"/bin/true", NULL};
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        pid_t pid; if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ)) return 1;
        int st; waitpid(pid, &st, 0);
        char f[4096], t[4096]; snprintf(f, sizeof f, "%s/%s", in, e->d_name); snprintf(t, sizeof t, "%s/%s", out, e->d_name);
        rename(f, t); n++;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("floor: %d files in %.3f s = %.0f files/s\n", n, s, n / s);
}
