#define _GNU_SOURCE
#include "CLinuxShims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

// An fd below 3 would be overwritten by an earlier dup2 action (or keep FD_CLOEXEC when
// dup2'ed onto itself), so such fds are first copied to a number >= 3.
static int lift_fd(int fd, int *temp) {
    *temp = -1;
    if (fd < 0 || fd > 2) return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return -1;
    *temp = copy;
    return copy;
}

int orch_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
               const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd, int search_path) {
    int temps[3] = {-1, -1, -1};
    int fds[3];
    int in[3] = {stdin_fd, stdout_fd, stderr_fd};
    for (int i = 0; i < 3; i++) {
        fds[i] = lift_fd(in[i], &temps[i]);
        if (fds[i] < 0 && in[i] >= 0) {
            int err = errno;
            for (int j = 0; j < i; j++) if (temps[j] >= 0) close(temps[j]);
            return err;
        }
    }

    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    int rc = posix_spawnattr_init(&attr);
    if (rc != 0) goto out_temps;
    rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) goto out_attr;

    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
#if defined(__GLIBC__) && defined(__SIGRTMIN)
    // sigfillset leaves out glibc's internal signals (32 SIGCANCEL, 33 SIGSETXID), and the
    // spawn helper then sets them to SIG_IGN in the child, which exec preserves (seen on 2.36:
    // SigIgn 0x180000000). Naming them in the default set makes them SIG_DFL like the rest.
    for (int sig = __SIGRTMIN; sig < SIGRTMIN; sig++) {
        all.__val[(sig - 1) / (8 * sizeof(all.__val[0]))] |= 1UL << ((sig - 1) % (8 * sizeof(all.__val[0])));
    }
#endif
    if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) != 0) goto out_all;
    if ((rc = posix_spawnattr_setsigmask(&attr, &none)) != 0) goto out_all;
    if ((rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0) goto out_all;

    if (fds[0] >= 0) {
        rc = posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    } else {
        rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    }
    if (rc != 0) goto out_all;
    for (int i = 1; i < 3; i++) {
        if (fds[i] < 0) continue;
        if ((rc = posix_spawn_file_actions_adddup2(&actions, fds[i], i)) != 0) goto out_all;
    }
    if (cwd != NULL && cwd[0] != '\0') {
        if ((rc = posix_spawn_file_actions_addchdir_np(&actions, cwd)) != 0) goto out_all;
    }
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) goto out_all;

    if (search_path) {
        rc = posix_spawnp(pid, path, &actions, &attr, argv, envp);
    } else {
        rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
    }

out_all:
    posix_spawn_file_actions_destroy(&actions);
out_attr:
    posix_spawnattr_destroy(&attr);
out_temps:
    for (int i = 0; i < 3; i++) if (temps[i] >= 0) close(temps[i]);
    return rc;
}

int orch_check_enterable_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return errno;
    if (!S_ISDIR(st.st_mode)) return ENOTDIR;
    if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) != 0) return errno;
    return 0;
}

int orch_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int orch_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int orch_epoll_add(int epfd, int fd, uint64_t token) {
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = token};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int orch_epoll_remove(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

int orch_epoll_ready(int epfd, uint64_t *tokens, int max) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do {
        n = epoll_wait(epfd, events, max, 0);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int orch_renameat2_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
}

int orch_pipe_cloexec_nonblock(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    int flags = fcntl(fds[0], F_GETFL);
    if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        errno = err;
        return -1;
    }
    return 0;
}

int orch_child_has_exited(pid_t pid) {
    siginfo_t info;
    info.si_pid = 0;
    int rc;
    do {
        rc = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT | WNOHANG);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return -1;
    return info.si_pid == pid ? 1 : 0;
}

int orch_reap(pid_t pid, orch_reaped *out) {
    int status = 0;
    struct rusage usage;
    pid_t rc;
    do {
        rc = wait4(pid, &status, 0, &usage);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    if (WIFSIGNALED(status)) {
        out->signaled = 1;
        out->code = WTERMSIG(status);
    } else {
        out->signaled = 0;
        out->code = WEXITSTATUS(status);
    }
    out->user_usec = (int64_t)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec;
    out->system_usec = (int64_t)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
    out->maxrss_kib = usage.ru_maxrss;
    return 0;
}

int orch_set_child_subreaper(int on) {
    return prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)(on != 0), 0, 0, 0);
}
