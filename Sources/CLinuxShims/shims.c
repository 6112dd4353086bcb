#define _GNU_SOURCE
#include "CLinuxShims.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <limits.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

// An fd below 5 would be overwritten by an earlier dup2 action (or keep FD_CLOEXEC when
// dup2'ed onto itself), so such fds are first copied to a number >= 5.
static int lift_fd(int fd, int *temp) {
    *temp = -1;
    if (fd < 0 || fd > 4) return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 5);
    if (copy < 0) return -1;
    *temp = copy;
    return copy;
}

static int reap_blocking(pid_t pid) {
    int status;
    pid_t rc;
    do {
        rc = waitpid(pid, &status, 0);
    } while (rc < 0 && errno == EINTR);
    return rc == pid ? 0 : -1;
}

// MARK: - Starting processes: from one thread, each set to die with the daemon

// Every process the daemon starts (a worker, the long-lived spawner, a one-shot helper) is started here, by
// start_child on parent_thread, and gets PR_SET_PDEATHSIG(SIGKILL) before its exec, which keeps it (not for a
// set-id program; the long-lived spawner clears it once it can outlive the daemon to end its workers' groups,
// spawn.c). Why: a daemon that is SIGKILLed cannot end its workers, and with a shared store another daemon
// runs their files again once their lease runs out; a worker that ran on would run its file twice at once. The
// signal is SIGKILL because nobody is left to wait for a graceful end, nor to reap it: a worker that caught
// SIGTERM and took its time would be exactly the double run this prevents. (A clean stop ends workers itself,
// after shutdown_grace, before the daemon exits, so this signal only reaches what a killed or crashed daemon left.)
// posix_spawn cannot run a prctl in the child, so start_child does what glibc's does (clone with CLONE_VM |
// CLONE_VFORK on a stack of its own, signals blocked, dispositions reset in the child) and adds the prctl.
//
// The kernel sends it when the *thread* that is the child's parent exits, not the process: a child of a Dispatch
// worker thread would be killed when that thread idles out. So the parent is one thread that is never ended,
// started with the first spawn; callers hand it the spawn and wait. The zygotes and one-shot workers forked with
// CLONE_PARENT by orchestrator-spawn have this thread for their parent too, and set the signal themselves
// (spawn.c), since a fork clears it.

struct child_start {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const char *search;  // PATH to look `path` up in; NULL: `path` is a path
    int fds[5];          // as spawn_with's, already lifted to >= 5
    pid_t parent;        // the daemon: getppid() in the child must say so
    int error;           // set by the child (shared memory) when it could not exec
};

enum { CHILD_STACK_SIZE = 256 * 1024 };
// Only parent_thread starts children, one at a time: one stack serves them all. Untouched pages cost nothing.
static char child_stack[CHILD_STACK_SIZE] __attribute__((aligned(64)));

__attribute__((noreturn)) static void child_fail(struct child_start *start, int error) {
    start->error = error;
    for (;;) syscall(SYS_exit, 127);  // This child only, before exec: nothing of the daemon's to flush.
}

/// execvp's rules as posix_spawnp applies them (no /bin/sh fallback for ENOEXEC): an empty entry is the working
/// directory, ENOENT-like failures try the next entry, EACCES is reported only if nothing else is found.
static int exec_searching(const char *search, const char *program, char *const argv[], char *const envp[]) {
    if (strchr(program, '/') != NULL) {
        execve(program, argv, envp);
        return errno;
    }
    char candidate[PATH_MAX];
    size_t length = strlen(program);
    int saw_eacces = 0;
    const char *entry = search;
    for (;;) {
        const char *end = strchrnul(entry, ':');
        size_t dir = (size_t)(end - entry);
        int error = ENAMETOOLONG;
        if (dir + 1 + length + 1 <= sizeof candidate) {
            memcpy(candidate, entry, dir);
            size_t n = dir;
            if (dir > 0) candidate[n++] = '/';
            memcpy(candidate + n, program, length + 1);
            execve(candidate, argv, envp);
            error = errno;
        }
        switch (error) {
        case EACCES: saw_eacces = 1; break;
        case ENOENT: case ENOTDIR: case ENODEV: case ESTALE: case ETIMEDOUT: case ENAMETOOLONG: break;
        default: return error;
        }
        if (*end == '\0') return saw_eacces ? EACCES : ENOENT;
        entry = end + 1;
    }
}

/// The child, sharing the daemon's memory until it execs (CLONE_VM | CLONE_VFORK): raw system calls only, and
/// every signal blocked until its dispositions are the defaults, so no handler of the daemon's runs here.
static int child_main(void *argument) {
    struct child_start *start = argument;
    // Every disposition to the default, glibc's internal signals included (sigaction refuses those). The
    // kernel's struct: handler (0: SIG_DFL), flags, restorer, mask.
    unsigned long default_action[4] = {0, 0, 0, 0};
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, default_action, NULL, 8);
    }
    setsid();  // Cannot fail: a fresh child leads no group.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) child_fail(start, errno);
    // The daemon died before the prctl: the signal will never come, so end now.
    if (getppid() != start->parent) child_fail(start, ESRCH);
    const int *fds = start->fds;
    if (fds[0] >= 0) {
        if (dup2(fds[0], 0) < 0) child_fail(start, errno);
    } else {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0) child_fail(start, errno);
        if (null != 0) {
            if (dup2(null, 0) < 0) child_fail(start, errno);
            close(null);
        }
    }
    for (int i = 1; i < 5; i++) {
        if (fds[i] >= 0 && dup2(fds[i], i) < 0) child_fail(start, errno);
    }
    if (start->cwd != NULL && start->cwd[0] != '\0' && chdir(start->cwd) != 0) child_fail(start, errno);
    unsigned int first_closed = fds[4] >= 0 ? 5 : fds[3] >= 0 ? 4 : 3;
    if (syscall(SYS_close_range, first_closed, ~0U, 0) != 0) {
        if (errno != ENOSYS) child_fail(start, errno);
        struct rlimit limit;  // A kernel before 5.9: one by one.
        unsigned long last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 1048576 ? limit.rlim_cur : 1048576;
        for (unsigned long fd = first_closed; fd < last; fd++) close((int)fd);
    }
    unsigned long none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
    int error;
    if (start->search != NULL) {
        error = exec_searching(start->search, start->path, start->argv, start->envp);
    } else {
        execve(start->path, start->argv, start->envp);
        error = errno;
    }
    child_fail(start, error);
    return 0;
}

/// Starts the child (called on parent_thread): 0 with *pid, or an errno (its exec's too, as posix_spawn reports).
static int start_child(struct child_start *start, pid_t *pid) {
    start->parent = getpid();
    start->error = 0;
    // All signals blocked (glibc's internal ones too) while the child shares our memory and stack.
    unsigned long all = ~0UL, before = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &before, 8);
    pid_t child = clone(child_main, child_stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, start);
    int error = child < 0 ? errno : 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &before, NULL, 8);
    if (error != 0) return error;
    // CLONE_VFORK: the child has exec'd or exited by now.
    if (start->error != 0) {
        reap_blocking(child);
        return start->error;
    }
    *pid = child;
    return 0;
}

struct parent_job {
    struct child_start *start;
    pid_t *pid;
    int result;
    int finished;
};

static pthread_mutex_t parent_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parent_asked = PTHREAD_COND_INITIALIZER;
static pthread_cond_t parent_answered = PTHREAD_COND_INITIALIZER;
static struct parent_job *parent_pending;
static pthread_once_t parent_once = PTHREAD_ONCE_INIT;
static int parent_start_error;
static pid_t parent_tid;

static void *parent_thread(void *unused) {
    (void)unused;
    // Children inherit this thread's scheduling policy. It inherited its creator's, which may be the event loop's
    // SCHED_BATCH: the process's own (its main thread's, as the service manager set it) is the workers' due.
    struct sched_param param;
    int policy = sched_getscheduler(getpid());
    if (policy >= 0 && sched_getparam(getpid(), &param) == 0) sched_setscheduler(0, policy, &param);
    pthread_mutex_lock(&parent_lock);
    parent_tid = (pid_t)syscall(SYS_gettid);
    pthread_cond_broadcast(&parent_answered);
    for (;;) {  // Never returns: its exit would SIGKILL every worker.
        while (parent_pending == NULL) pthread_cond_wait(&parent_asked, &parent_lock);
        struct parent_job *job = parent_pending;
        pthread_mutex_unlock(&parent_lock);
        job->result = start_child(job->start, job->pid);
        pthread_mutex_lock(&parent_lock);
        job->finished = 1;
        parent_pending = NULL;
        pthread_cond_broadcast(&parent_answered);
    }
    return NULL;
}

static void start_parent_thread(void) {
    pthread_attr_t attr;
    pthread_t thread;
    parent_start_error = pthread_attr_init(&attr);
    if (parent_start_error != 0) return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // No signal is handled on it (it inherits this mask): the daemon's handlers run on its other threads.
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &before);
    parent_start_error = pthread_create(&thread, &attr, parent_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    pthread_attr_destroy(&attr);
}

/// Runs start_child on parent_thread and waits for it.
static int start_child_from_parent_thread(struct child_start *start, pid_t *pid) {
    pthread_once(&parent_once, start_parent_thread);
    if (parent_start_error != 0) return parent_start_error;
    struct parent_job job = {start, pid, 0, 0};
    pthread_mutex_lock(&parent_lock);
    while (parent_pending != NULL) pthread_cond_wait(&parent_answered, &parent_lock);
    parent_pending = &job;
    pthread_cond_signal(&parent_asked);
    while (!job.finished) pthread_cond_wait(&parent_answered, &parent_lock);
    pthread_mutex_unlock(&parent_lock);
    return job.result;
}

pid_t orch_parent_thread_id(void) {
    pthread_once(&parent_once, start_parent_thread);
    if (parent_start_error != 0) return 0;
    pthread_mutex_lock(&parent_lock);
    while (parent_tid == 0) pthread_cond_wait(&parent_answered, &parent_lock);
    pid_t tid = parent_tid;
    pthread_mutex_unlock(&parent_lock);
    return tid;
}

// fds 0-2 from `in` (in[0] < 0: /dev/null; in[1] or in[2] < 0: the caller's), in[3] >= 0 becomes fd 3 and
// in[4] >= 0 fd 4 (only with fd 3), the rest closed.
static int spawn_with(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                      const char *cwd, const int in[5], int search_path) {
    int temps[5] = {-1, -1, -1, -1, -1};
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = lift_fd(in[i], &temps[i]);
        if (fds[i] < 0 && in[i] >= 0) {
            int err = errno;
            for (int j = 0; j < i; j++) if (temps[j] >= 0) close(temps[j]);
            return err;
        }
    }

    // posix_spawnp's PATH: the calling process's, glibc's default if unset.
    const char *search = NULL;
    if (search_path) {
        search = getenv("PATH");
        if (search == NULL) search = "/bin:/usr/bin";
    }
    struct child_start start = {path, argv, envp, cwd, search, {fds[0], fds[1], fds[2], fds[3], fds[4]}, 0, 0};
    int rc = start_child_from_parent_thread(&start, pid);
    for (int i = 0; i < 5; i++) if (temps[i] >= 0) close(temps[i]);
    return rc;
}

int orch_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
               const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd, int search_path) {
    int in[5] = {stdin_fd, stdout_fd, stderr_fd, -1, -1};
    return spawn_with(pid, path, argv, envp, cwd, in, search_path);
}


int orch_spawn_via_helper(pid_t *pid, const char *helper, const char *search, const char *path,
                          char *const argv[], char *const envp[], const char *cwd, int stdout_fd, int stderr_fd) {
    size_t argc = 0;
    while (argv[argc] != NULL) argc++;
    char **helper_argv = calloc(argc + 5, sizeof(char *));
    if (helper_argv == NULL) return ENOMEM;
    helper_argv[0] = (char *)helper;
    helper_argv[1] = search != NULL ? "p" : "n";
    helper_argv[2] = search != NULL ? (char *)search : "";
    helper_argv[3] = (char *)path;
    for (size_t i = 0; i < argc; i++) helper_argv[4 + i] = argv[i];

    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        int err = errno;
        free(helper_argv);
        return err;
    }
    pid_t helper_pid = 0;
    int in[5] = {-1, stdout_fd, stderr_fd, report[1], -1};
    int rc = spawn_with(&helper_pid, helper, helper_argv, envp, cwd, in, 0);
    free(helper_argv);
    close(report[1]);
    if (rc != 0) {
        close(report[0]);
        return rc;
    }

    // End of file once the helper has exited and the worker has exec'd (fd 3 is close-on-exec there) or exited.
    int32_t records[4] = {0};
    size_t got = 0;
    while (got < sizeof records) {
        ssize_t n = read(report[0], (char *)records + got, sizeof records - got);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    close(report[0]);
    reap_blocking(helper_pid);  // It exits right after its report.

    pid_t worker = 0;
    int failure = 0;
    for (size_t i = 0; i + 1 < got / sizeof(int32_t); i += 2) {
        if (records[i] == 'P') worker = records[i + 1];
        if (records[i] == 'E' || records[i] == 'F') failure = records[i + 1];
    }
    if (failure == 0 && worker <= 0) failure = ECHILD;  // The helper died before reporting.
    if (failure != 0) {
        if (worker > 0) reap_blocking(worker);  // Our child (CLONE_PARENT); it exits 127 at once.
        return failure;
    }
    *pid = worker;
    return 0;
}

int orch_spawner_start(const char *helper, pid_t *pid, int *requests, int *replies) {
    // Two sockets, one per direction. On one socket both ways, each side's read of the other's message freed
    // buffer space charged to the sender's end, and that woke the sender blocked in its own read for nothing
    // (unix_write_space wakes every waiter on the socket): two wake-ups more per worker, one of them the daemon's.
    int pair[2], back[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return errno;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, back) != 0) {
        int err = errno;
        close(pair[0]);
        close(pair[1]);
        return err;
    }
    char *argv[] = {(char *)helper, "s", NULL};
    char *envp[] = {NULL};
    // fds 0-2 /dev/null (fd 0 is every worker's stdin; 1 and 2 must not hold a reader of ours open), requests
    // come in on fd 3, replies go out on fd 4. Its own session: a terminal's ^C is the daemon's to handle.
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int rc = null < 0 ? errno : 0;
    if (rc == 0) {
        int in[5] = {-1, null, null, pair[1], back[1]};
        rc = spawn_with(pid, helper, argv, envp, "/", in, 0);
        close(null);
    }
    close(pair[1]);
    close(back[1]);
    if (rc != 0) {
        close(pair[0]);
        close(back[0]);
        return rc;
    }
    // A spawner that stopped answering (SIGSTOP, a hang) is given up on rather than waited for forever.
    struct timeval limit = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(back[0], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(pair[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    *requests = pair[0];
    *replies = back[0];
    return 0;
}

static int send_all(int sock, const char *bytes, size_t length) {
    while (length > 0) {
        ssize_t n = send(sock, bytes, length, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        bytes += n;
        length -= (size_t)n;
    }
    return 0;
}

int orch_spawner_order(int sock, uint32_t count) {
    uint32_t order[2] = {0x6f67797a, count};  // ZYGOTE_ORDER (spawn.c)
    return send_all(sock, (const char *)order, sizeof order);
}

int orch_spawner_take(int replies, int wait, pid_t *pid, int fds[4]) {
    int32_t answer[2];
    union { struct cmsghdr align; char bytes[CMSG_SPACE(4 * sizeof(int))]; } control;
    struct iovec iov = {answer, sizeof answer};
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t n;
    do n = recvmsg(replies, &message, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
    while (n < 0 && errno == EINTR);
    if (n < 0 && !wait && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
    if (n <= 0) return -1;  // Gone, or no answer within the time limit.
    int received[4] = {-1, -1, -1, -1};
    int count = 0;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        count = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (count > 4) count = 4;
        memcpy(received, CMSG_DATA(cmsg), (size_t)count * sizeof(int));
    }
    size_t got = (size_t)n;
    while (got < sizeof answer) {  // Sent as one piece of 8 bytes; this only guards against a short read.
        n = recv(replies, (char *)answer + got, sizeof answer - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    int rc = got < sizeof answer ? -1 : answer[1] != 0 ? answer[1] : answer[0] <= 0 ? -1 : 0;
    if (rc == 0 && count != 4) {
        // Fds dropped on the way in: we are at our fd limit. The zygote cannot be used (or reached): end it.
        kill(answer[0], SIGKILL);
        reap_blocking(answer[0]);
        rc = EMFILE;
    }
    if (rc != 0) {
        for (int i = 0; i < count; i++) close(received[i]);
        return rc;
    }
    *pid = answer[0];
    memcpy(fds, received, sizeof received);
    return 0;
}

int orch_zygote_request(int zygote, const char *search, const char *path, char *const argv[], char *const envp[],
                        const char *cwd) {
    char here[PATH_MAX];
    if (cwd == NULL || cwd[0] == '\0') {
        // The zygote runs in "/": an unset working directory means ours, as with posix_spawn.
        if (getcwd(here, sizeof here) == NULL) return errno;
        cwd = here;
    }
    uint32_t argc = 0, envc = 0;
    size_t length = strlen(path) + 1 + (search ? strlen(search) : 0) + 1 + strlen(cwd) + 1;
    for (; argv[argc] != NULL; argc++) length += strlen(argv[argc]) + 1;
    for (; envp[envc] != NULL; envc++) length += strlen(envp[envc]) + 1;
    if (length > (1u << 20) || (size_t)argc + envc + 2 > 32768) return E2BIG;  // PAYLOAD_MAX, POINTERS_MAX
    uint32_t header[4] = {(uint32_t)length, search ? 1 : 0, argc, envc};
    size_t total = sizeof header + length;
    char *message = malloc(total);
    if (message == NULL) return ENOMEM;
    memcpy(message, header, sizeof header);
    char *at = message + sizeof header;
#define PUT(s) do { size_t n_ = strlen(s) + 1; memcpy(at, (s), n_); at += n_; } while (0)
    PUT(path);
    PUT(search ? search : "");
    PUT(cwd);
    for (uint32_t i = 0; i < argc; i++) PUT(argv[i]);
    for (uint32_t i = 0; i < envc; i++) PUT(envp[i]);
#undef PUT
    int broken = send_all(zygote, message, total) != 0;
    free(message);
    return broken ? -1 : 0;
}

void orch_zygote_end(const int fds[4], pid_t pid) {
    close(fds[0]);  // End of file: it exits (a request cut short included).
    for (int i = 1; i < 4; i++) close(fds[i]);
    kill(pid, SIGKILL);  // Even if stopped.
    reap_blocking(pid);
}

void orch_spawner_stop(int sock, pid_t pid) {
    // Killed before it can read end of file: end of file alone says the daemon died, and the spawner then ends
    // every worker group it made (spawn.c, "Worker groups outlive no daemon"), running ones included.
    kill(pid, SIGKILL);  // Even if stopped or hung.
    close(sock);
    reap_blocking(pid);
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
    struct epoll_event event = {0};
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event);
}

int orch_epoll_wait_tokens(int epfd, uint64_t *tokens, int max) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int n;
    do {
        n = epoll_wait(epfd, events, max, -1);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) tokens[i] = events[i].data.u64;
    return n;
}

int orch_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int orch_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

int orch_timerfd_arm(int fd, int64_t milliseconds) {
    struct itimerspec spec = {0};
    if (milliseconds >= 0) {
        spec.it_value.tv_sec = milliseconds / 1000;
        spec.it_value.tv_nsec = (milliseconds % 1000) * 1000000;
        // A zero it_value would disarm it: "now" is the next nanosecond.
        if (milliseconds == 0) spec.it_value.tv_nsec = 1;
    }
    return timerfd_settime(fd, 0, &spec, NULL);
}

void orch_drain_counter(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) < 0 && errno == EINTR) {}
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

int orch_list_children(pid_t parent, orch_child *out, int max) {
    DIR *proc = opendir("/proc");
    if (proc == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    char path[64];
    char stat[1024];
    while (count < max && (entry = readdir(proc)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] < '1' || name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  // Gone meanwhile.
        ssize_t n;
        do {
            n = read(fd, stat, sizeof stat - 1);
        } while (n < 0 && errno == EINTR);
        close(fd);
        if (n <= 0) continue;
        stat[n] = '\0';
        // The command name (field 2) may hold spaces and ')': fields are counted from the last ')'.
        char *paren = strrchr(stat, ')');
        char state;
        int ppid, group, session;
        if (paren == NULL || sscanf(paren + 1, " %c %d %d %d", &state, &ppid, &group, &session) != 4) continue;
        if (ppid != parent) continue;
        out[count].pid = (pid_t)atoi(name);
        out[count].group = group;
        out[count].session = session;
        out[count].exited = state == 'Z' || state == 'X';
        count++;
    }
    closedir(proc);
    return count;
}

int orch_reap_if_exited(pid_t pid) {
    int status;
    pid_t rc;
    do {
        rc = waitpid(pid, &status, WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -1;
    return rc == pid ? 1 : 0;
}
