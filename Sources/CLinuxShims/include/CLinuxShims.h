// Linux calls that Swift's Glibc module does not export (GNU extensions, raw syscalls,
// function-like macros). Every function returns 0 or a value >= 0 on success; on failure
// it returns -1 with errno set, unless its comment says otherwise.
#ifndef ORCH_CLINUXSHIMS_H
#define ORCH_CLINUXSHIMS_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Starts `path` in a new session (pid == pgid == sid) with an empty signal mask, every
/// catchable signal at its default action, PR_SET_PDEATHSIG(SIGKILL) (it dies with this process; started from
/// one thread that lives as long as the process, see shims.c), fds 0/1/2 taken from the three fds (stdin_fd < 0
/// means /dev/null; stdout_fd or stderr_fd < 0 keeps the caller's), working directory `cwd`
/// (NULL or "" keeps the caller's; a relative `path` is resolved after the chdir), and every
/// other fd closed. `search_path` != 0 looks `path` up as posix_spawnp does (PATH of the calling process).
/// Returns 0, or an errno value (posix_spawn style: exec failures such as
/// ENOENT, EACCES or a failed chdir this way). errno is not used.
int orch_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
               const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd, int search_path);

/// Like orch_spawn (stdin /dev/null), but the worker is a fork of `helper` (orchestrator-spawn), made our child
/// with CLONE_PARENT, and the helper exits: the worker's max RSS is then its own instead of starting at this
/// process's peak. `search` non-NULL: look `path` up in that
/// PATH value (execvp rules); NULL: `path` is a path. Returns 0 with *pid the worker's pid (pid == pgid == sid), or
/// an errno value: the helper's spawn (a failed chdir), the worker's exec, or ECHILD if the helper did not report.
int orch_spawn_via_helper(pid_t *pid, const char *helper, const char *search, const char *path,
                          char *const argv[], char *const envp[], const char *cwd, int stdout_fd, int stderr_fd);

/// Starts orchestrator-spawn as a long-lived spawner (`helper s`, see spawn.c) in its own session, connected by
/// two stream sockets, one for requests and one for replies; 0 or an errno.
int orch_spawner_start(const char *helper, pid_t *pid, int *requests, int *replies);

/// Asks a running spawner for `count` more zygotes (spawn.c): 0, or -1 if it is gone or does not read.
int orch_spawner_order(int sock, uint32_t count);

/// Takes the spawner's next announcement from `replies`, waiting for it (at most the socket's time limit) if
/// `wait`: 0 with *pid the zygote's pid and `fds` its socket, its pidfd and the (non-blocking) read ends of its
/// stdout and stderr, all close-on-exec; -2 (without `wait`) if none has come yet; the positive errno of a
/// zygote the spawner could not make, or EMFILE for one whose fds we had no room for (it is ended and reaped);
/// -1 if the spawner is gone or does not answer (stop it).
int orch_spawner_take(int replies, int wait, pid_t *pid, int fds[4]);

/// Sends a zygote (`fds[0]` from orch_spawner_take) the request that makes it the worker (its pid is the
/// zygote's): 0 once sent (a chdir or exec that fails is reported on the worker's stderr, see spawn.c); a positive
/// errno if nothing was sent (the zygote stays unused); -1 if the zygote is gone or does not read (end it with
/// orch_zygote_end: it runs nothing).
int orch_zygote_request(int zygote, const char *search, const char *path, char *const argv[], char *const envp[],
                        const char *cwd);

/// Ends an unused zygote (or one whose request failed) and reaps it; closes its four fds.
void orch_zygote_end(const int fds[4], pid_t pid);

/// Ends a spawner and reaps it; its replies socket stays open (what it announced can still be taken there).
void orch_spawner_stop(int sock, pid_t pid);

/// The kernel thread id of the thread every child of ours is started from (shims.c: it lives as long as the
/// process, so that the children's PR_SET_PDEATHSIG fires only when the process dies), starting it if needed;
/// 0 if it cannot be started. For tests.
pid_t orch_parent_thread_id(void);

/// Whether a chdir to `path` would succeed, without changing directory: 0, or the errno value
/// chdir would give (ENOENT, ENOTDIR, EACCES...). Used to explain a failed orch_spawn.
int orch_check_enterable_dir(const char *path);

/// pidfd_open(2), flags 0. The fd is close-on-exec.
int orch_pidfd_open(pid_t pid);

/// renameat2(2) with RENAME_NOREPLACE: fails with EEXIST instead of replacing `newpath`.
int orch_renameat2_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// pipe2(O_CLOEXEC); only the read end fds[0] is made O_NONBLOCK.
int orch_pipe_cloexec_nonblock(int fds[2]);

/// waitid(P_PID, pid, WEXITED | WNOWAIT | WNOHANG): 1 if the child has terminated (it stays
/// a zombie, so its pid and process group cannot be reused), 0 if it is still running.
int orch_child_has_exited(pid_t pid);

typedef struct {
    int32_t signaled;      ///< 1: killed by `code` (a signal number); 0: exited with status `code`
    int32_t code;
    int64_t user_usec;
    int64_t system_usec;
    int64_t maxrss_kib;
} orch_reaped;

/// wait4(pid, ..., 0, &rusage), retried on EINTR: reaps the child and decodes its status.
int orch_reap(pid_t pid, orch_reaped *out);

/// epoll_create1(EPOLL_CLOEXEC).
int orch_epoll_create(void);

/// epoll_ctl(EPOLL_CTL_ADD) of `fd` for input, level-triggered, carrying `token`.
int orch_epoll_add(int epfd, int fd, uint64_t token);

/// epoll_ctl(EPOLL_CTL_DEL) of `fd`: for an fd that stays open after it is no longer watched.
int orch_epoll_remove(int epfd, int fd);

/// epoll_wait(epfd, ..., max, -1), retried on EINTR: waits until at least one fd is ready, stores the tokens of
/// up to `max` ready fds (readable, hung up or in error: each means "look at it") and returns how many, or -1.
int orch_epoll_wait_tokens(int epfd, uint64_t *tokens, int max);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int orch_eventfd(void);

/// timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK).
int orch_timerfd_create(void);

/// Arms the timerfd to expire once, `milliseconds` from now (0: at once); a negative value disarms it.
int orch_timerfd_arm(int fd, int64_t milliseconds);

/// Reads (and so resets) an eventfd's or a timerfd's counter; does nothing if it is zero (non-blocking fd).
void orch_drain_counter(int fd);

typedef struct {
    pid_t pid;
    pid_t group;     ///< its process group
    pid_t session;
    int32_t exited;  ///< 1: a zombie, waiting to be reaped
} orch_child;

/// The children of `parent` (its ppid), from /proc/PID/stat: this kernel may lack
/// /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN). Stores up to `max`, returns how many, or -1.
int orch_list_children(pid_t parent, orch_child *out, int max);

/// waitpid(pid, WNOHANG), retried on EINTR: 1 if reaped, 0 if still running, -1 (errno) if not our child.
int orch_reap_if_exited(pid_t pid);

/// prctl(PR_SET_CHILD_SUBREAPER, on).
int orch_set_child_subreaper(int on);

#ifdef __cplusplus
}
#endif

#endif
