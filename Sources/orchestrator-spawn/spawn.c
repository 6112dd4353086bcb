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
// Usage (by ProcessSupervisor only): orchestrator-spawn MODE SEARCH_PATH PROGRAM ARGV0 ARGV1 ...
//   MODE "p": look PROGRAM up in SEARCH_PATH (execvp rules); "n": PROGRAM is a path, SEARCH_PATH is ignored.
// The environment is the worker's. fds 0-2, the working directory, the signal mask and dispositions are the
// worker's already (set by the daemon's posix_spawn). fd 3 is the report pipe: records of 8 bytes, a tag and a
// 32-bit value: 'P' the worker's pid, 'E' the errno of a failed exec, 'F' the errno of a failed fork.
// The worker never sees fd 3 (close-on-exec), so end of file on the pipe means the worker has exec'd or exited.

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "orchestrator-spawn: add this architecture's system call convention"
#endif

typedef long word;

#if defined(__x86_64__)
enum { SYS_write = 1, SYS_fcntl = 72, SYS_setsid = 112, SYS_execve = 59, SYS_exit = 60, SYS_clone = 56 };

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
enum { SYS_write = 64, SYS_fcntl = 25, SYS_setsid = 157, SYS_execve = 221, SYS_exit = 93, SYS_clone = 220 };

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

enum { REPORT_FD = 3, F_SETFD = 2, FD_CLOEXEC = 1, CLONE_PARENT = 0x8000, PATH_MAX = 4096 };
enum { EACCES = 13, ENOENT = 2, ENOTDIR = 20, ENODEV = 19, ESTALE = 116, ETIMEDOUT = 110, ENAMETOOLONG = 36 };

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

static void report(char tag, int value) {
    int record[2] = {tag, value};
    syscall3(SYS_write, REPORT_FD, (word)record, sizeof record);  // 8 bytes < PIPE_BUF: atomic
}

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

__attribute__((used, noreturn)) void spawn_main(word *stack) {
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    if (argc < 5) exit_now(125);
    const char *mode = argv[1];
    const char *search = argv[2];
    const char *program = argv[3];
    char **worker_argv = argv + 4;

    syscall3(SYS_fcntl, REPORT_FD, F_SETFD, FD_CLOEXEC);
    // fork(), but a sibling: a new process with its own signal struct, whose parent is the daemon. With
    // CLONE_PARENT the exit signal is ours (SIGCHLD, from the daemon's posix_spawn).
    word pid = syscall5(SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
    if (pid < 0) {
        report('F', (int)-pid);
        exit_now(0);
    }
    if (pid == 0) {
        syscall3(SYS_setsid, 0, 0, 0);  // Cannot fail: a fresh child leads no group.
        int error = mode[0] == 'p' ? exec_searching(search, program, worker_argv, envp)
                                   : exec(program, worker_argv, envp);
        report('E', error);
        exit_now(127);
    }
    report('P', (int)pid);
    exit_now(0);
}
