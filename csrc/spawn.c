/* spawn.c - vfork+execve of a new generation, and exec of this process (spawn.h). */
#define _GNU_SOURCE
#include "spawn.h"
#include "config.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

char *spawn_resolve_exe(void)
{
    const char *name = cfg.argv[0];
    if (strchr(name, '/')) {
        char *path;
        if (name[0] == '/')
            path = strdup(name);
        else if (asprintf(&path, "%s/%s", cfg.cwd, name) < 0)
            path = NULL;
        if (path && access(path, X_OK) == 0)
            return path;
        free(path);
        return NULL;
    }
    const char *search = huptime_env_get(cfg.envp, "PATH");
    if (!search)
        search = "/usr/local/bin:/usr/bin:/bin";
    int saved = ENOENT;
    while (*search) {
        size_t len = strcspn(search, ":");
        char *path;
        const char *dir = len ? search : ".";
        int dlen = len ? (int)len : 1;
        if (asprintf(&path, "%.*s/%s", dlen, dir, name) < 0)
            return NULL;
        if (path[0] != '/') { /* relative PATH entry: from the start directory */
            char *abs;
            if (asprintf(&abs, "%s/%s", cfg.cwd, path) < 0)
                abs = NULL;
            free(path);
            path = abs;
            if (!path)
                return NULL;
        }
        if (access(path, X_OK) == 0)
            return path;
        if (errno != ENOENT)
            saved = errno;
        free(path);
        search += len + (search[len] == ':');
    }
    errno = saved;
    return NULL;
}

int spawn_plan_make(struct spawn_plan *p, const struct handoff *h)
{
    memset(p, 0, sizeof *p);
    p->exe = spawn_resolve_exe();
    if (!p->exe) {
        log_info("cannot restart: %s: %s", cfg.argv[0], strerror(errno));
        return -1;
    }
    /* The record's directory goes to every generation. */
    p->envp = huptime_build_env_control(cfg.envp, h, cfg.control_fd, &p->pid_slot);
    if (!p->envp) {
        log_info("cannot restart: out of memory building the environment");
        free(p->exe);
        return -1;
    }
    for (int i = 0; i < h->nfds; i++)
        p->keep[p->nkeep++] = h->fds[i];
    if (h->ready_fd >= 0)
        p->keep[p->nkeep++] = h->ready_fd;
    for (int i = 0; i < h->nstdio; i++)
        p->keep[p->nkeep++] = h->stdio[i];
    p->stdio_out = h->nstdio == 2 ? h->stdio[0] : -1;
    p->stdio_err = h->nstdio == 2 ? h->stdio[1] : -1;
    if (cfg.supervisor_fd >= 0) /* at the number the environment names (see start) */
        p->keep[p->nkeep++] = cfg.supervisor_env_fd;
    if (cfg.control_fd > 2)
        p->keep[p->nkeep++] = cfg.control_fd;
    p->arrive_ignored = h->nignored >= 0;
    return 0;
}

void spawn_plan_free(struct spawn_plan *p)
{
    free(p->exe);
    free(p->envp);
    p->exe = NULL;
    p->envp = NULL;
}

/* Close every descriptor from 3 up except those in keep[] (sorted here). */
static void close_all_but(int *keep, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned lo = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] < 3)
            continue;
        if ((unsigned)keep[i] > lo)
            syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0U, 0);
}

/* Async-signal-safe from here to execve. */
static void become_new_image(struct spawn_plan *p)
{
    sigset_t all;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Pending signals survive execve, and closing descriptors can raise more
     * (nginx's O_ASYNC channels send SIGIO): ignore every signal while the old
     * image's descriptors are closed, which also discards what is pending. The
     * operator's stop signals are left alone. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGTERM && sig != SIGINT && sig != SIGQUIT) {
            sa.sa_handler = SIG_IGN;
            REAL(sigaction)(sig, &sa, NULL);
        }
    if (chdir(cfg.cwd) < 0) {
        /* keep going from wherever we are: the program reports its own errors */
    }
    if (cfg.supervisor_fd >= 0 && cfg.supervisor_fd != cfg.supervisor_env_fd)
        REAL(dup2)(cfg.supervisor_fd, cfg.supervisor_env_fd); /* the program took its number */
    if (p->stdio_out >= 0) { /* the first start's stdout and stderr, whatever the program did */
        REAL(dup2)(p->stdio_out, 1);
        REAL(dup2)(p->stdio_err, 2);
    }
    close_all_but(p->keep, p->nkeep);
    for (int i = 0; i < p->nkeep; i++)
        REAL(fcntl64)(p->keep[i], F_SETFD, 0);
    /* A new process (vfork child) is alone: restore the start dispositions now.
     * This process's other threads still run until execve ends them, and what
     * they close or write can raise a signal at any moment up to then, so an
     * exec'ing image keeps everything ignored and its next shim restores the
     * dispositions (HUPTIME_IGNORED_SIGNALS, restore_signals in config.c). */
    if (!p->arrive_ignored)
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP) {
                sa.sa_handler = sigismember(&cfg.start_ignored, sig) ? SIG_IGN : SIG_DFL;
                REAL(sigaction)(sig, &sa, NULL);
            }
    huptime_put_pid(p->pid_slot, (long)syscall(SYS_getpid));
    sigprocmask(SIG_SETMASK, &cfg.start_mask, NULL);
    REAL(execve)(p->exe, cfg.argv, p->envp);
}

pid_t spawn_child(struct spawn_plan *p)
{
    pid_t pid = vfork();
    if (pid == 0) {
        become_new_image(p);
        _exit(127);
    }
    return pid;
}

struct command_start { const char *command; int out_fd, status_fd; char **envp; };

/* The child of spawn_command: shares this memory until it execs (CLONE_VM |
 * CLONE_VFORK), so async-signal-safe calls only. */
static int command_child(void *arg)
{
    struct command_start *c = arg;
    char *argv[] = { "sh", "-c", (char *)c->command, NULL };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) {
            sa.sa_handler = sigismember(&cfg.start_ignored, sig) ? SIG_IGN : SIG_DFL;
            REAL(sigaction)(sig, &sa, NULL);
        }
    if (chdir(cfg.cwd) < 0) {
        /* run from here: the command reports its own errors */
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0)
        REAL(dup2)(null, 0);
    REAL(dup2)(c->out_fd, 1);
    REAL(dup2)(c->out_fd, 2);
    REAL(dup2)(c->status_fd, 3);
    syscall(SYS_close_range, 4, ~0U, 0);
    setpgid(0, 0); /* a timeout ends the shell and whatever it started */
    sigprocmask(SIG_SETMASK, &cfg.start_mask, NULL);
    REAL(execve)("/bin/sh", argv, c->envp ? c->envp : cfg.envp);
    _exit(127);
}

/* Its stack: the parent waits (CLONE_VFORK) until the child execs or exits. */
#define COMMAND_STACK (64 * 1024)

pid_t spawn_command(const char *command, int out_fd, int status_fd, char **envp)
{
    /* The status goes through a pipe as well: a program that reaps every child
     * (nginx's master calls waitpid(-1)) may take it before the shim does. */
    char *wrapped = NULL;
    if (asprintf(&wrapped, "( %s\n) 3>&-; echo $? >&3", command) < 0)
        return -1;
    struct command_start c = { wrapped, out_fd, status_fd, envp };
    char *stack = malloc(COMMAND_STACK);
    if (!stack) {
        free(wrapped);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* no handler of the program's in the child */
    /* Exit signal 0: the program gets no SIGCHLD for it (its waitpid(-1) may
     * still reap it). */
    pid_t pid = clone(command_child, stack + COMMAND_STACK, CLONE_VM | CLONE_VFORK, &c);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(stack);
    free(wrapped);
    errno = e;
    return pid;
}

void spawn_exec_self(struct spawn_plan *p)
{
    int e;
    become_new_image(p);
    e = errno;
    sigprocmask(SIG_SETMASK, &cfg.start_mask, NULL);
    errno = e;
}
