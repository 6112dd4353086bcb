// orchestrator-spawn: starts one worker on behalf of the daemon, so that the worker's measurements are its own.
//
// Why it exists: at execve the kernel folds the old mm's peak RSS into the new program's signal->maxrss
// (fs/exec.c, exec_mmap: setmax_mm_hiwater_rss). A worker started straight from the daemon with posix_spawn
// (CLONE_VM|CLONE_VFORK) execs from the daemon's mm, so its ru_maxrss starts at the daemon's peak (27 MiB for
// /bin/true). Here the worker is a fork of this tiny process instead: a fresh signal struct, and an old mm of a
// few pages. The fork is a clone with CLONE_PARENT, so the worker is the daemon's child from the start (this
// process exits at once) and is supervised and reaped (wait4) exactly like a directly spawned one.
//
// No libc: static glibc start-up alone cost ~280 us per run on the development machine (a raw-syscall binary
// ~100 us for spawn, exec, exit and reap), and this runs once per worker.
//
// Two ways to use it (by ProcessSupervisor only):
//
// orchestrator-spawn s: a spawner that lives as long as the daemon (the default). It forks zygotes ahead of need:
//   children (CLONE_PARENT: the daemon's, in sessions of their own) that each wait for one request on a socket
//   of their own and then become that worker, so neither the fork nor a round trip to this process is on the
//   way from a free slot to the worker's exec. fd 3 is a stream socket the daemon's orders come in on: two 32-bit
//   words, ZYGOTE_ORDER and how many zygotes to make. fd 4 is one the announcements go out on (one socket both
//   ways woke each side once more per message: see orch_spawner_start): two 32-bit words, the zygote's pid and
//   0 with four fds as SCM_RIGHTS (the daemon's end of the zygote's socket, its pidfd, the read ends of its
//   stdout and stderr pipes: made here, off the daemon's thread), or 0 and the errno of a failed fork. A request
//   to a zygote is a header of four 32-bit words (payload length, 1 to search PATH, argc, envc), then the
//   payload: PROGRAM, SEARCH_PATH, the working directory, ARGV..., ENVP..., each NUL-terminated. The daemon does not wait for the exec: a worker whose chdir or exec fails says
//   so in the first 17 bytes of its stderr (`report_start_failure`) and exits 127, and the daemon, which reaps
//   it, reports the failed start then. End of file on its socket ends a zygote (exit 0, the daemon reaps it),
//   end of file on fd 3 the spawner, after it has ended its workers' groups (the daemon died: see "Worker groups
//   outlive no daemon"; a daemon that ends the spawner SIGKILLs it first).
//
// orchestrator-spawn MODE SEARCH_PATH PROGRAM ARGV0 ARGV1 ...: starts one worker and exits.
//   MODE "p": look PROGRAM up in SEARCH_PATH (execvp rules); "n": PROGRAM is a path, SEARCH_PATH is ignored.
// The environment is the worker's. fds 0-2, the working directory, the signal mask and dispositions are the
// worker's already (set by the daemon as it started this process: shims.c, child_main). fd 3 is the report pipe: records of 8 bytes, a tag and a
// 32-bit value: 'P' the worker's pid, 'E' the errno of a failed exec, 'F' the errno of a failed fork.
// The worker never sees fd 3 (close-on-exec), so end of file on the pipe means the worker has exec'd or exited.
// In both modes the worker is forked from this process, whose mm is a few pages, and is the daemon's child.
// Every process forked here (zygote, worker) dies with the daemon: see die_with_daemon. The long-lived spawner
// outlives it only to end what its workers started in their groups.

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "orchestrator-spawn: add this architecture's system call convention"
#endif

typedef long word;

#if defined(__x86_64__)
enum {
    SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_fcntl = 72, SYS_setsid = 112, SYS_execve = 59, SYS_exit = 60,
    SYS_clone = 56, SYS_dup3 = 292, SYS_chdir = 80, SYS_recvmsg = 47, SYS_sendmsg = 46, SYS_socketpair = 53,
    SYS_pipe2 = 293, SYS_setsockopt = 54, SYS_prctl = 157, SYS_getppid = 110, SYS_sched_setscheduler = 144,
    SYS_sched_getscheduler = 145, SYS_kill = 62, SYS_epoll_create1 = 291, SYS_epoll_ctl = 233, SYS_epoll_pwait = 281,
    SYS_clock_gettime = 228, SYS_pidfd_open = 434
};

static inline word syscall3(word n, word a, word b, word c) {
    word r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static inline word syscall5(word n, word a, word b, word c, word d, word e) {
    word r;
    register word r10 __asm__("r10") = d;
    register word r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return r;
}

__asm__(".text\n.globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call spawn_main\n hlt\n");
#else
enum {
    SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_fcntl = 25, SYS_setsid = 157, SYS_execve = 221, SYS_exit = 93,
    SYS_clone = 220, SYS_dup3 = 24, SYS_chdir = 49, SYS_recvmsg = 212, SYS_sendmsg = 211, SYS_socketpair = 199,
    SYS_pipe2 = 59, SYS_setsockopt = 208, SYS_prctl = 167, SYS_getppid = 173, SYS_sched_setscheduler = 119,
    SYS_sched_getscheduler = 120, SYS_kill = 129, SYS_epoll_create1 = 20, SYS_epoll_ctl = 21, SYS_epoll_pwait = 22,
    SYS_clock_gettime = 113, SYS_pidfd_open = 434
};

static inline word syscall5(word n, word a, word b, word c, word d, word e) {
    register word x8 __asm__("x8") = n;
    register word x0 __asm__("x0") = a;
    register word x1 __asm__("x1") = b;
    register word x2 __asm__("x2") = c;
    register word x3 __asm__("x3") = d;
    register word x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}

static inline word syscall3(word n, word a, word b, word c) { return syscall5(n, a, b, c, 0, 0); }

__asm__(".text\n.globl _start\n_start:\n mov x29, #0\n mov x30, #0\n mov x0, sp\n and sp, x0, #-16\n bl spawn_main\n brk #0\n");
#endif

enum { REPORT_FD = 3, REPLY_FD = 4, F_SETFD = 2, FD_CLOEXEC = 1, CLONE_PARENT = 0x8000, PATH_MAX = 4096 };
enum { EACCES = 13, ENOENT = 2, ENOTDIR = 20, ENODEV = 19, ESTALE = 116, ETIMEDOUT = 110, ENAMETOOLONG = 36 };
enum { EINTR = 4, E2BIG = 7, EINVAL = 22, EPROTO = 71 };
enum { SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_CMSG_CLOEXEC = 0x40000000 };
enum { AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 02000000, O_CLOEXEC = 02000000, O_NONBLOCK = 04000 };
enum { F_SETFL = 4, SO_SNDTIMEO = 21, CLONE_PIDFD = 0x1000 };
enum { PR_SET_PDEATHSIG = 1, SIGKILL = 9 };
enum { EPOLL_CLOEXEC = 02000000, EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLLIN = 1 };
/// The first word of an order: larger than any payload length, so a request in an older build's format is told
/// apart.
enum { ZYGOTE_ORDER = 0x6f67797a };

// SwiftPM links every executable with swiftc, which adds swiftrt.o: its constructor registers the image's Swift
// metadata sections with the runtime. This program has no Swift code and no constructors run (no libc start-up),
// so these only satisfy the linker and keep libswiftCore out.
void swift_addNewDSOImage(const void *image) { (void)image; }
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }

// The compiler may turn the copy loops into calls to these even when freestanding.
void *memcpy(void *to, const void *from, unsigned long n) {
    char *t = to;
    const char *f = from;
    while (n--) *t++ = *f++;
    return to;
}

void *memset(void *to, int c, unsigned long n) {
    char *t = to;
    while (n--) *t++ = (char)c;
    return to;
}

__attribute__((noreturn)) static void exit_now(int code) {
    for (;;) syscall3(SYS_exit, code, 0, 0);
}

/// The daemon's pid, read at start. The daemon started this process with PR_SET_PDEATHSIG(SIGKILL) after checking
/// in it that the daemon was still its parent (shims.c, child_main): had the daemon died since, we would be killed
/// before returning from getppid, so what it says is the daemon.
static int daemon_pid;

/// A fork clears PR_SET_PDEATHSIG: a zygote or worker forked here (CLONE_PARENT: the parent is the daemon's thread
/// that started us, which never ends before the daemon) sets it again, so that it dies with the daemon (SIGKILL,
/// see shims.c). A daemon that died before the prctl sends nothing: then the parent is no longer the daemon, and
/// this returns 0 (the caller ends without running anything).
static int die_with_daemon(void) {
    if (syscall3(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0) < 0) return 0;
    return syscall3(SYS_getppid, 0, 0, 0) == daemon_pid;
}

static void report_to(int fd, char tag, int value) {
    int record[2] = {tag, value};
    syscall3(SYS_write, fd, (word)record, sizeof record);  // 8 bytes < PIPE_BUF: atomic
}

static void report(char tag, int value) { report_to(REPORT_FD, tag, value); }

/// execve; returns the (positive) errno of the failure.
static int exec(const char *path, char *const argv[], char *const envp[]) {
    return (int)-syscall3(SYS_execve, (word)path, (word)argv, (word)envp);
}

/// glibc's execvpe rules (posix/execvpe.c): an empty entry is the working directory; ENOENT-like failures try the
/// next entry, EACCES is remembered and reported if nothing else is found, any other failure stops the search.
static int exec_searching(const char *search, const char *program, char *const argv[], char *const envp[]) {
    char candidate[PATH_MAX];
    int length = 0;
    while (program[length] != '\0') length++;
    int saw_eacces = 0;
    const char *entry = search;
    for (;;) {
        const char *end = entry;
        while (*end != '\0' && *end != ':') end++;
        int dir = (int)(end - entry);
        int error = ENAMETOOLONG;
        if (dir + 1 + length + 1 <= PATH_MAX) {
            int n = 0;
            for (int i = 0; i < dir; i++) candidate[n++] = entry[i];
            if (dir > 0) candidate[n++] = '/';
            for (int i = 0; i <= length; i++) candidate[n++] = program[i];
            error = exec(candidate, argv, envp);
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


// MARK: - The long-lived spawner

struct iovec { void *base; unsigned long length; };
struct msghdr {
    void *name;
    unsigned int name_length;
    struct iovec *iov;
    unsigned long iov_count;
    void *control;
    unsigned long control_length;
    int flags;
};
struct cmsghdr { unsigned long length; int level; int type; };

// Requests: the payload is copied here. Untouched pages cost nothing; a worker forked from here starts with the
// pages this process has touched (a few for a usual request), never with the daemon's.
enum { PAYLOAD_MAX = 1 << 20, POINTERS_MAX = 32768 };
static char payload[PAYLOAD_MAX];
static char *pointers[POINTERS_MAX];

/// Reads exactly `length` bytes; 0 at end of file or on an error.
static int read_fully(int fd, char *to, unsigned long length) {
    while (length > 0) {
        word n = syscall3(SYS_read, fd, (word)to, (word)length);
        if (n == -EINTR) continue;
        if (n <= 0) return 0;
        to += n;
        length -= (unsigned long)n;
    }
    return 1;
}

/// The first bytes a worker that could not be started writes to its stderr before it exits 127: the marker, the
/// stage that failed ('d' moving its fds, 'c' entering its working directory, 'x' the exec) and the errno as four
/// bytes in this machine's order. The daemon takes them out of the stream (ProcessSupervisor+Output.swift).
static const char start_failure_marker[12] = "\0orch-spawn";

static void report_start_failure(char stage, int error) {
    char record[17];
    for (int i = 0; i < 12; i++) record[i] = start_failure_marker[i];
    record[12] = stage;
    memcpy(record + 13, &error, 4);
    syscall3(SYS_write, 2, (word)record, sizeof record);  // 17 bytes < PIPE_BUF: one piece
}

/// dup3 refuses to copy an fd onto itself; then only close-on-exec has to go.
static int move_fd(int fd, int to) {
    if (fd == to) return (int)syscall3(SYS_fcntl, fd, F_SETFD, 0);
    return (int)syscall3(SYS_dup3, fd, to, 0);
}

enum { SCHED_OTHER = 0, SCHED_BATCH = 3 };
/// The spawner and its waiting zygotes run at SCHED_BATCH when the daemon runs at the normal policy: a zygote woken
/// by its request (or the spawner by an order) then waits for a core rather than preempting the daemon's thread
/// that woke it, midway through its round. Each zygote goes back to the normal policy before it becomes the worker.
static int batch_until_exec;

/// A zygote: forked ahead of need, it waits on its own socket for the one request it will ever serve, then
/// becomes that worker (its pid is the one the daemon was given with the socket). End of file: not needed.
__attribute__((noreturn)) static void zygote(int sock, int out, int err) {
    unsigned int header[4];
    if (!read_fully(sock, (char *)header, sizeof header)) exit_now(0);
    unsigned int length = header[0], search = header[1], argc = header[2], envc = header[3];
    // The daemon refuses larger requests before sending (orch_zygote_request): these cannot come from it.
    if (length > PAYLOAD_MAX || (unsigned long)argc + envc + 2 > POINTERS_MAX) exit_now(127);
    if (!read_fully(sock, payload, length)) exit_now(0);  // Cut short: the daemon gave up on this start.
    syscall3(SYS_close, sock, 0, 0);
    if (batch_until_exec) {
        int normal = 0;  // struct sched_param: the priority, 0 for the normal policy
        syscall3(SYS_sched_setscheduler, 0, SCHED_OTHER, (word)&normal);
    }
    // PROGRAM, SEARCH_PATH, CWD, ARGV..., ENVP...: split at the NULs.
    char *strings[3] = {0, 0, 0};
    unsigned long at = 0, count = 0, wanted = 3 + (unsigned long)argc + envc;
    while (count < wanted && at < length) {
        char *start = payload + at;
        while (at < length && payload[at] != '\0') at++;
        if (at == length) break;
        at++;
        if (count < 3) {
            strings[count] = start;
        } else if (count < 3 + argc) {
            pointers[count - 3] = start;
        } else {
            pointers[count - 2] = start;  // After argv's NULL.
        }
        count++;
    }
    // Every fd of ours is close-on-exec (the pipes' write ends too); 0 is /dev/null already.
    word moved = move_fd(out, 1);
    if (moved >= 0) moved = move_fd(err, 2);
    if (moved < 0) exit_now(127);  // stderr is not the pipe: nothing to say it on
    if (count != wanted || argc == 0) {
        report_start_failure('x', EPROTO);
        exit_now(127);
    }
    pointers[argc] = 0;
    pointers[argc + 1 + envc] = 0;
    char **argv = pointers, **envp = pointers + argc + 1;
    const char *program = strings[0], *path = strings[1], *cwd = strings[2];
    if (cwd[0] != '\0') {
        word changed = syscall3(SYS_chdir, (word)cwd, 0, 0);
        if (changed < 0) {
            report_start_failure('c', (int)-changed);
            exit_now(127);
        }
    }
    int error = search ? exec_searching(path, program, argv, envp) : exec(program, argv, envp);
    report_start_failure('x', error);
    exit_now(127);
}

/// Tells the daemon about a new zygote: its pid and 0 with four fds (the daemon's end of the zygote's socket, its
/// pidfd, and the read ends of its stdout and stderr pipes), or 0 and the errno of a failure (no fds).
static void announce(int pid, int error, const int fds[4]) {
    int words[2] = {pid, error};
    struct iovec iov = {words, sizeof words};
    union { struct cmsghdr header; char bytes[sizeof(struct cmsghdr) + 4 * sizeof(int)]; } control;
    control.header.length = sizeof(struct cmsghdr) + 4 * sizeof(int);
    control.header.level = SOL_SOCKET;
    control.header.type = SCM_RIGHTS;
    if (fds) memcpy(control.bytes + sizeof(struct cmsghdr), fds, 4 * sizeof(int));
    struct msghdr message = {0, 0, &iov, 1, fds ? &control : 0, fds ? sizeof control : 0, 0};
    // 8 bytes: all or nothing. A gone daemon ends us (SIGPIPE) or the next read.
    syscall3(SYS_sendmsg, REPLY_FD, (word)&message, 0);
}

static void close_all(const int *fds, int count) {
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0) syscall3(SYS_close, fds[i], 0, 0);
}

// MARK: Worker groups outlive no daemon
//
// A worker and its zygote die with the daemon (PR_SET_PDEATHSIG), but that signal reaches only the worker: what it
// started in its group (a shell's child, a pipeline) ran on, and on a shared store beside the run another daemon
// took over once the lease ran out. This process outlives a SIGKILLed daemon by design (it clears its own death
// signal and waits for end of file on fd 3, which comes as the daemon's descriptors close): then it ends the group
// of every zygote it made whose leader runs or exited in the last LEADER_GRACE_NS (SIGKILL to the group, as the
// daemon's clean stop does). The leaders die of their death signal at about the same moment as that end of file,
// in either order: a group whose leader exited just now is ended too. One whose leader exited longer ago is
// forgotten (the daemon ended that group as its leader exited, and its number may be handed out again once the
// group is empty: it must never be signalled). An exit is seen through a pidfd of the leader opened here.

enum { GROUPS_MAX = 8192, DAEMON_GONE = -1, CLOCK_MONOTONIC = 1 };
static const long LEADER_GRACE_NS = 1000000000L;
struct epoll_event {
    unsigned int events;
    unsigned long data;
}
#if defined(__x86_64__)
__attribute__((packed))
#endif
;
static int watch = -1;
static int group_leader[GROUPS_MAX], group_pidfd[GROUPS_MAX], groups;
/// CLOCK_MONOTONIC ns when the group's leader exited; 0 while it runs.
static long group_left_at[GROUPS_MAX];

static long monotonic_ns(void) {
    long t[2] = {0, 0};  // struct timespec
    syscall3(SYS_clock_gettime, CLOCK_MONOTONIC, (word)t, 0);
    return t[0] * 1000000000L + t[1] + 1;  // never 0
}

/// Keeps `pidfd` to learn when the group's leader exits; 0 when it cannot (then the group is not ended here).
static int track_group(int leader, int pidfd) {
    if (watch < 0 || groups == GROUPS_MAX) return 0;
    struct epoll_event event = {EPOLLIN, (unsigned long)(unsigned int)leader};
    if (syscall5(SYS_epoll_ctl, watch, EPOLL_CTL_ADD, pidfd, (word)&event, 0) < 0) return 0;
    group_leader[groups] = leader;
    group_pidfd[groups] = pidfd;
    group_left_at[groups] = 0;
    groups++;
    return 1;
}

static void leader_exited(int leader, long now) {
    for (int i = 0; i < groups; i++) {
        if (group_leader[i] != leader || group_left_at[i] != 0) continue;
        // Removed from the watch before the close: a zygote forked meanwhile holds a copy of this pidfd until it
        // execs, and a registration lives as long as its file.
        syscall5(SYS_epoll_ctl, watch, EPOLL_CTL_DEL, group_pidfd[i], 0, 0);
        syscall3(SYS_close, group_pidfd[i], 0, 0);
        group_pidfd[i] = -1;
        group_left_at[i] = now;
        return;
    }
}

/// Drops the groups whose leader exited longer ago than LEADER_GRACE_NS.
static void forget_old_groups(long now) {
    for (int i = 0; i < groups;) {
        if (group_left_at[i] != 0 && now - group_left_at[i] > LEADER_GRACE_NS) {
            groups--;
            group_leader[i] = group_leader[groups];
            group_pidfd[i] = group_pidfd[groups];
            group_left_at[i] = group_left_at[groups];
        } else {
            i++;
        }
    }
}

static void stop_tracking(void) {
    for (int i = 0; i < groups; i++)
        if (group_pidfd[i] >= 0) syscall3(SYS_close, group_pidfd[i], 0, 0);
    groups = 0;
    syscall3(SYS_close, watch, 0, 0);
    watch = -1;
}

__attribute__((noreturn)) static void end_groups_and_exit(void) {
    forget_old_groups(monotonic_ns());
    for (int i = 0; i < groups; i++) syscall3(SYS_kill, -group_leader[i], SIGKILL, 0);
    exit_now(0);
}

/// Everything a worker's start needs that does not depend on its request is made here, off the daemon's thread:
/// the socket the request comes on, the output pipes (the daemon's read ends non-blocking), the fork, the pidfd.
static void make_zygote(void) {
    // sock, stdout, stderr: [0] the daemon's end, [1] the zygote's.
    int fds[6] = {-1, -1, -1, -1, -1, -1};
    word made = syscall5(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, (word)fds, 0);
    if (made >= 0) made = syscall3(SYS_pipe2, (word)(fds + 2), O_CLOEXEC, 0);
    if (made >= 0) made = syscall3(SYS_pipe2, (word)(fds + 4), O_CLOEXEC, 0);
    if (made >= 0) made = syscall3(SYS_fcntl, fds[2], F_SETFL, O_NONBLOCK);
    if (made >= 0) made = syscall3(SYS_fcntl, fds[4], F_SETFL, O_NONBLOCK);
    if (made >= 0) {
        // A zygote that stopped reading (SIGSTOP) must not hang the daemon in a large request.
        long limit[2] = {5, 0};
        made = syscall5(SYS_setsockopt, fds[0], SOL_SOCKET, SO_SNDTIMEO, (word)limit, sizeof limit);
    }
    if (made < 0) {
        close_all(fds, 6);
        announce(0, (int)-made, 0);
        return;
    }
    // fork(), but a sibling: the daemon's child from the start, as every worker must be.
    int pidfd = -1;
    word pid = syscall5(SYS_clone, CLONE_PARENT | CLONE_PIDFD, 0, (word)&pidfd, 0, 0);
    if (pid == 0) {
        syscall3(SYS_close, REPORT_FD, 0, 0);
        syscall3(SYS_close, REPLY_FD, 0, 0);
        int ours[3] = {fds[0], fds[2], fds[4]};
        close_all(ours, 3);
        syscall3(SYS_setsid, 0, 0, 0);  // Cannot fail: a fresh child leads no group.
        if (!die_with_daemon()) exit_now(0);  // The daemon is gone: nobody will ask this zygote for anything.
        zygote(fds[1], fds[3], fds[5]);
    }
    if (pid < 0) {
        announce(0, (int)-pid, 0);
    } else {
        int theirs[4] = {fds[0], pidfd, fds[2], fds[4]};
        announce((int)pid, 0, theirs);
        syscall3(SYS_close, pidfd, 0, 0);
        // A pidfd of its own, not the daemon's: an open file the daemon closes must be gone (its epoll registration
        // lives as long as the file, and an exited process's pidfd stays readable).
        int mine = (int)syscall3(SYS_pidfd_open, pid, 0, 0);
        if (mine >= 0 && !track_group((int)pid, mine)) syscall3(SYS_close, mine, 0, 0);
    }
    close_all(fds, 6);
}

/// Orders are 32-bit counts of zygotes wanted; anything else (a daemon of another build) ends us, and the daemon
/// then runs the helper per worker.
__attribute__((noreturn)) static void serve(void) {
    int priority = 0;
    if (syscall3(SYS_sched_getscheduler, 0, 0, 0) == SCHED_OTHER)
        batch_until_exec = syscall3(SYS_sched_setscheduler, 0, SCHED_BATCH, (word)&priority) == 0;
    syscall3(SYS_fcntl, REPORT_FD, F_SETFD, FD_CLOEXEC);
    if (syscall3(SYS_fcntl, REPLY_FD, F_SETFD, FD_CLOEXEC) < 0) exit_now(0);
    // Outlives the daemon to end its workers' groups (see "Worker groups outlive no daemon"): the daemon's clean
    // stop and its giving up on this process SIGKILL it first. Without a watch nothing is tracked, and this process
    // dies with the daemon as before.
    watch = (int)syscall3(SYS_epoll_create1, EPOLL_CLOEXEC, 0, 0);
    struct epoll_event orders = {EPOLLIN, (unsigned long)DAEMON_GONE};
    if (watch >= 0 && syscall5(SYS_epoll_ctl, watch, EPOLL_CTL_ADD, REPORT_FD, (word)&orders, 0) < 0) {
        syscall3(SYS_close, watch, 0, 0);
        watch = -1;
    }
    if (watch >= 0) {
        syscall3(SYS_prctl, PR_SET_PDEATHSIG, 0, 0);
        // The daemon died before the prctl: no signal came and none will; its workers' groups are ended below.
        if (syscall3(SYS_getppid, 0, 0, 0) != daemon_pid) end_groups_and_exit();
    }
    for (;;) {
        if (watch >= 0) {
            struct epoll_event ready[64];
            word count = syscall5(SYS_epoll_pwait, watch, (word)ready, 64, -1, 0);
            if (count < 0 && count != -EINTR) {
                // The watch failed with the daemon still there: ending its workers now would be the harm this guards
                // against. Track nothing more, and wait for orders as before.
                stop_tracking();
                continue;
            }
            int has_order = 0;
            long now = monotonic_ns();
            for (word i = 0; i < count; i++) {
                if ((long)ready[i].data == DAEMON_GONE) has_order = 1;
                else leader_exited((int)ready[i].data, now);
            }
            forget_old_groups(now);
            if (!has_order) continue;
        }
        unsigned int order[2];
        if (!read_fully(REPORT_FD, (char *)order, sizeof order)) end_groups_and_exit();  // The daemon is gone.
        if (order[0] != ZYGOTE_ORDER || order[1] > 64) exit_now(0);
        for (unsigned int i = 0; i < order[1]; i++) make_zygote();
    }
}

__attribute__((used, noreturn)) void spawn_main(word *stack) {
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    daemon_pid = (int)syscall3(SYS_getppid, 0, 0, 0);
    if (argc == 2 && argv[1][0] == 's' && argv[1][1] == '\0') serve();
    if (argc < 5) exit_now(125);
    const char *mode = argv[1];
    const char *search = argv[2];
    const char *program = argv[3];
    char **worker_argv = argv + 4;

    syscall3(SYS_fcntl, REPORT_FD, F_SETFD, FD_CLOEXEC);
    // fork(), but a sibling: a new process with its own signal struct, whose parent is the daemon. With
    // CLONE_PARENT the exit signal is ours (SIGCHLD, from the daemon's clone: shims.c, start_child).
    word pid = syscall5(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
    if (pid < 0) {
        report('F', (int)-pid);
        exit_now(0);
    }
    if (pid == 0) {
        syscall3(SYS_setsid, 0, 0, 0);  // Cannot fail: a fresh child leads no group.
        if (!die_with_daemon()) exit_now(127);  // The daemon is gone: its worker must not run unsupervised.
        int error = mode[0] == 'p' ? exec_searching(search, program, worker_argv, envp)
                                   : exec(program, worker_argv, envp);
        report('E', error);
        exit_now(127);
    }
    report('P', (int)pid);
    exit_now(0);
}
