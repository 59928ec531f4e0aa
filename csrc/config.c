/* config.c - read the settings, snapshot the start-up state, validate the handoff. */
#define _GNU_SOURCE
#include "config.h"
#include "log.h"
#include "real.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct config cfg = { .ready_fd = -1, .supervisor_fd = -1, .supervisor_env_fd = -1, .slot = -1,
                      .stdio_out = -1, .control_fd = -1 };

static char **copy_strv(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof(char *));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = strdup(v[i])))
            return NULL;
    return out;
}

int config_env_add(const char *entry)
{
    size_t n = 0;
    while (cfg.envp && cfg.envp[n])
        n++;
    char **v = calloc(n + 2, sizeof *v), *copy = strdup(entry);
    if (!v || !copy) {
        free(v);
        free(copy);
        return -1;
    }
    memcpy(v, cfg.envp, n * sizeof *v);
    v[n] = copy;
    cfg.envp = v; /* the old array stays: it may be a snapshot's block (snapshot.h) */
    return 0;
}

/* A duration in ms: dflt when absent; 0 allowed only with may_be_zero. */
static int setting_ms(char **envp, const char *name, long dflt, int may_be_zero, long *out)
{
    const char *s = huptime_env_get(envp, name);
    if (!s) {
        *out = dflt;
        return 0;
    }
    if (huptime_parse_uint(s, 1000L * 86400 * 365, out) < 0 || (*out == 0 && !may_be_zero)) {
        log_info("ignoring settings: %s=%s is not a %s number of milliseconds", name, s,
                 may_be_zero ? "whole" : "positive");
        return -1;
    }
    return 0;
}

/* A listening stream socket, or a datagram socket (the old generation only
 * hands over bound ones). */
static int is_handed_over_socket(int fd)
{
    struct stat st;
    int on = 0, type = 0;
    socklen_t len = sizeof on;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on)
        return 1;
    len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM;
}

/* The handoff's protocol version: -1 if this shim does not speak it. */
static int load_protocol(char **envp)
{
    const char *s = huptime_env_get(envp, ENV_PROTOCOL);
    long v = 1;
    if (s && huptime_parse_uint(s, 1000000L, &v) < 0)
        v = 0;
    cfg.protocol = (int)v;
    if (!huptime_env_get(envp, ENV_FDS) && !huptime_env_get(envp, ENV_READY_FD))
        return 0; /* nothing handed over: nothing to understand */
    return v >= HUPTIME_PROTOCOL_MIN && v <= HUPTIME_PROTOCOL_VERSION ? 0 : -1;
}

static void load_handoff(char **envp)
{
    const char *s = huptime_env_get(envp, ENV_GENERATION);
    long v;
    cfg.generation = 1;
    if (s && huptime_parse_uint(s, 1000000000L, &v) == 0 && v > 0)
        cfg.generation = (int)v;
    s = huptime_env_get(envp, ENV_PENDING);
    cfg.pending = s && strcmp(s, "1") == 0;
    s = huptime_env_get(envp, ENV_NOTIFY_PROGRAM);
    cfg.notify_program = s && strcmp(s, "1") == 0;

    s = huptime_env_get(envp, ENV_FDS);
    if (s) {
        int fds[HANDOFF_MAX_FDS];
        int n = huptime_parse_fd_list(s, fds, HANDOFF_MAX_FDS);
        if (n < 0)
            log_info("ignoring " ENV_FDS "=%.40s: not a list of at most %d descriptor numbers", s,
                     HANDOFF_MAX_FDS);
        for (int i = 0; i < n; i++) {
            if (is_handed_over_socket(fds[i]))
                cfg.inherited[cfg.n_inherited++] = fds[i];
            else
                log_info("ignoring inherited descriptor %d: not a listening socket", fds[i]);
        }
    }
    s = huptime_env_get(envp, ENV_STDIO_FDS);
    if (s) {
        int io[2];
        struct stat a, b;
        if (huptime_parse_fd_list(s, io, 2) == 2 && io[0] > 2 && io[1] > 2 &&
            fstat(io[0], &a) == 0 && fstat(io[1], &b) == 0) {
            cfg.stdio_out = io[0];
            log_fd = io[1];
            /* Passed on by the shim alone: programs the server runs never get them. */
            REAL(fcntl64)(io[0], F_SETFD, FD_CLOEXEC);
            REAL(fcntl64)(io[1], F_SETFD, FD_CLOEXEC);
        } else {
            log_info("ignoring " ENV_STDIO_FDS "=%.20s: not two open descriptors above stderr", s);
        }
    }
    s = huptime_env_get(envp, ENV_READY_FD);
    if (s) {
        struct stat st;
        if (huptime_parse_uint(s, 65535, &v) == 0 && v > 2 && fstat((int)v, &st) == 0 &&
            S_ISFIFO(st.st_mode))
            cfg.ready_fd = (int)v;
        else
            log_info("ignoring " ENV_READY_FD "=%.20s: not an open pipe above stderr", s);
    }
}

/* An exec'd image arrives with every catchable signal ignored (spawn.c): set
 * them back to what they were at the first start. Setting SIG_IGN first drops
 * whatever the old image left pending. Done even if other settings are bad, so
 * the program never runs with signals it did not ask to ignore. */
static void restore_signals(const char *list)
{
    int ignored[HANDOFF_MAX_SIGNALS];
    int n = huptime_parse_fd_list(list, ignored, HANDOFF_MAX_SIGNALS);
    if (n < 0) {
        log_info(ENV_IGNORED_SIGNALS "=%.40s is malformed: every signal set to default", list);
        n = 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        int keep = 0;
        for (int i = 0; i < n; i++)
            keep |= ignored[i] == sig;
        sa.sa_handler = SIG_IGN;
        REAL(sigaction)(sig, &sa, NULL);
        if (!keep) {
            sa.sa_handler = SIG_DFL;
            REAL(sigaction)(sig, &sa, NULL);
        }
    }
}

/* HUPTIME_UNLINK: absolute paths, one per line. NULL-terminated copies, or
 * NULL (logged) if malformed. */
static char **parse_unlink(const char *s)
{
    char **out = calloc(MAX_UNLINK + 1, sizeof(char *));
    int n = 0;
    if (!out)
        return NULL;
    while (*s) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > 0) {
            if (n == MAX_UNLINK || s[0] != '/' || len >= PATH_MAX ||
                !(out[n++] = strndup(s, len))) {
                log_info("ignoring settings: " ENV_UNLINK " needs at most %d absolute paths",
                         MAX_UNLINK);
                for (int i = 0; i < n; i++)
                    free(out[i]);
                free(out);
                return NULL;
            }
        }
        s += len + (end != NULL);
    }
    return out;
}

/* The record's directory as a descriptor (O_PATH): the record's files are
 * reached through it, so a program that gives up root after start, and the
 * generations it starts with the privileges it kept, never search the private
 * directories above it again. A new generation gets it in HUPTIME_CONTROL_FD;
 * the first start, a handoff from a shim before the variable, or a program that
 * a wrapper exec'd (the descriptor is close-on-exec) opens the path now, while
 * the process still has the privileges it started with. spawn.c keeps it for
 * the next generation. -1 if neither works: record.c then uses the path. */
static int is_control_dir(int fd)
{
    char link[32], target[PATH_MAX];
    struct stat fd_st, path_st;
    if (fstat(fd, &fd_st) < 0 || !S_ISDIR(fd_st.st_mode))
        return 0;
    if (stat(cfg.control, &path_st) == 0) /* root still may look */
        return path_st.st_dev == fd_st.st_dev && path_st.st_ino == fd_st.st_ino;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd); /* the path, as the kernel has it */
    ssize_t n = readlink(link, target, sizeof target - 1);
    return n > 0 && (size_t)n == strlen(cfg.control) && memcmp(target, cfg.control, (size_t)n) == 0;
}

static void load_control(char **envp)
{
    const char *s = huptime_env_get(envp, ENV_CONTROL_FD);
    long v;
    if (!cfg.control)
        return;
    if (s && huptime_parse_uint(s, 65535, &v) == 0 && v > 2 && is_control_dir((int)v)) {
        cfg.control_fd = (int)v;
        REAL(fcntl64)(cfg.control_fd, F_SETFD, FD_CLOEXEC);
        return;
    }
    if (s)
        LOG_DEBUG("ignoring " ENV_CONTROL_FD "=%.20s: not the instance record's directory", s);
    int fd = open(cfg.control, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fd < 3) { /* 0-2 are the program's, even when it started without them */
        int moved = REAL(fcntl64)(fd, F_DUPFD_CLOEXEC, 3);
        REAL(close)(fd);
        fd = moved;
    }
    cfg.control_fd = fd;
}

/* The start state: the snapshot an earlier image of this leader carried across
 * its exec (snapshot.h), else copied from this image's start. 0, or -1 (logged). */
static int load_snapshot(char **argv, char **envp)
{
    long v;
    struct snapshot snap;
    const char *s = huptime_env_get(envp, ENV_REEXEC);
    if (s && huptime_parse_uint(s, INT_MAX, &v) == 0 && v > 2 && snapshot_read((int)v, &snap) == 0) {
        cfg.reexec = 1;
        cfg.argv = snap.argv;
        cfg.envp = snap.envp;
        cfg.cwd = snap.cwd;
        cfg.start_mask = snap.mask;
        cfg.start_ignored = snap.ignored;
        return 0;
    }
    if (s)
        log_info("ignoring " ENV_REEXEC "=%.20s: not a start snapshot; this image starts its "
                 "generation afresh", s);
    cfg.argv = copy_strv(argv);
    cfg.envp = copy_strv(envp);
    cfg.cwd = get_current_dir_name();
    if (!cfg.argv || !cfg.argv[0] || !cfg.envp || !cfg.cwd) {
        log_info("ignoring settings: cannot record argv, environment or directory: %s",
                 strerror(errno ? errno : ENOMEM));
        return -1;
    }
    sigprocmask(SIG_SETMASK, NULL, &cfg.start_mask);
    sigemptyset(&cfg.start_ignored);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (REAL(sigaction)(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            sigaddset(&cfg.start_ignored, sig);
    }
    return 0;
}

enum config_result config_load(int argc, char **argv, char **envp)
{
    (void)argc;
    long v;
    const char *s = huptime_env_get(envp, ENV_DEBUG);
    log_debug_enabled = s && strcmp(s, "1") == 0;

    const char *mode = huptime_env_get(envp, ENV_MODE);
    const char *pid = huptime_env_get(envp, ENV_PID);
    if (!mode || !pid)
        return CONFIG_INERT; /* not started by huptime */
    if (huptime_parse_uint(pid, 1L << 30, &v) < 0 || v != (long)getpid())
        return CONFIG_INERT; /* a program the server started */
    s = huptime_env_get(envp, ENV_IGNORED_SIGNALS);
    if (s)
        restore_signals(s);

    if (strcmp(mode, "fork") == 0)
        cfg.mode = MODE_FORK;
    else if (strcmp(mode, "exec") == 0)
        cfg.mode = MODE_EXEC;
    else {
        log_info("ignoring settings: " ENV_MODE "=%.20s is neither fork nor exec", mode);
        return CONFIG_INERT;
    }
    cfg.signo = SIGHUP;
    s = huptime_env_get(envp, ENV_SIGNAL);
    if (s) {
        if (huptime_parse_uint(s, SIGRTMAX, &v) < 0 || v < 1 || v == SIGKILL || v == SIGSTOP) {
            log_info("ignoring settings: " ENV_SIGNAL "=%.20s is not a catchable signal", s);
            return CONFIG_INERT;
        }
        cfg.signo = (int)v;
    }
    if (setting_ms(envp, ENV_READY_TIMEOUT_MS, 60000, 0, &cfg.ready_timeout_ms) < 0 ||
        setting_ms(envp, ENV_DRAIN_TIMEOUT_MS, 300000, 0, &cfg.drain_timeout_ms) < 0 ||
        setting_ms(envp, ENV_DRAIN_IDLE_MS, 1000, 1, &cfg.drain_idle_ms) < 0 ||
        setting_ms(envp, ENV_PROBE_TIMEOUT_MS, cfg.ready_timeout_ms, 0, &cfg.probe_timeout_ms) < 0)
        return CONFIG_INERT;

    s = huptime_env_get(envp, ENV_DRAIN_SIGNAL);
    if (s) {
        if (huptime_parse_uint(s, SIGRTMAX, &v) < 0 || v < 1 || v == SIGKILL || v == SIGSTOP ||
            v == cfg.signo || cfg.mode == MODE_EXEC) {
            log_info("ignoring settings: " ENV_DRAIN_SIGNAL "=%.20s is not a catchable signal "
                     "other than the restart signal, in fork mode", s);
            return CONFIG_INERT;
        }
        cfg.drain_signal = (int)v;
    }
    s = huptime_env_get(envp, ENV_BACKLOG);
    cfg.backlog = BACKLOG_DEFAULT;
    if (s && huptime_parse_uint(s, 65535, &v) == 0) {
        cfg.backlog = (int)v;
    } else if (s) {
        log_info("ignoring settings: " ENV_BACKLOG "=%.20s is not a number from 0 to 65535", s);
        return CONFIG_INERT;
    }
    s = huptime_env_get(envp, ENV_CHECK);
    if (s && *s && !(cfg.check = strdup(s)))
        return CONFIG_INERT;
    s = huptime_env_get(envp, ENV_PROBE);
    if (s && *s && cfg.mode == MODE_FORK && !(cfg.probe = strdup(s)))
        return CONFIG_INERT;
    s = huptime_env_get(envp, ENV_PROBE_HTTP);
    if (s && (s[0] != '/' || strlen(s) >= PROBE_HTTP_PATH_MAX || strpbrk(s, " \t\r\n"))) {
        log_info("ignoring settings: " ENV_PROBE_HTTP "=%.40s is not a path such as /healthz", s);
        return CONFIG_INERT;
    }
    if (s && cfg.mode == MODE_FORK && !(cfg.probe_http = strdup(s)))
        return CONFIG_INERT;
    s = huptime_env_get(envp, ENV_WAIT);
    cfg.wait_children = s && strcmp(s, "1") == 0;
    s = huptime_env_get(envp, ENV_UNLINK);
    if (s && !(cfg.unlink = parse_unlink(s)))
        return CONFIG_INERT;

    s = huptime_env_get(envp, ENV_SUPERVISOR_FD);
    if (s && huptime_parse_uint(s, 65535, &v) == 0 && v > 2)
        cfg.supervisor_fd = cfg.supervisor_env_fd = (int)v;
    else if (s)
        log_info("ignoring " ENV_SUPERVISOR_FD "=%.20s: not a descriptor above stderr", s);

    s = huptime_env_get(envp, ENV_SLOT);
    if (s && huptime_parse_uint(s, 4096, &v) == 0)
        cfg.slot = (int)v;
    else if (s)
        log_info("ignoring " ENV_SLOT "=%.20s: not a copy number", s);

    s = huptime_env_get(envp, ENV_CONTROL);
    if (s && s[0] == '/' && strlen(s) < PATH_MAX - 32)
        cfg.control = strdup(s);
    else if (s)
        log_info("ignoring " ENV_CONTROL "=%.40s: not an absolute directory name; "
                 "no instance record", s);

    if (load_snapshot(argv, envp) < 0)
        return CONFIG_INERT;
    load_control(envp);
    cfg.pid = getpid();
    int understood = load_protocol(envp) == 0;
    load_handoff(envp);
    return understood ? CONFIG_LOADED : CONFIG_REFUSED;
}
