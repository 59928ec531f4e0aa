/* config.h - the settings and the start-up snapshot, read once in the constructor.
 *
 * Settings come from the environment the launcher prepared; the snapshot (argv,
 * environment, working directory, signal state) is what every restart starts the
 * program with. Programs rewrite argv and clear environ later, so both are copied.
 * cfg is written by the constructor; after it only `pid` changes (the fork hook,
 * shim.c) and the descriptor variables the registry moves out of a dup2()'s way
 * (ready_fd, supervisor_fd, stdio_out, control_fd, inherited[]: see reg_adopt).
 */
#ifndef HUPTIME_CONFIG_H
#define HUPTIME_CONFIG_H

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>
#include "handoff.h"

enum huptime_mode { MODE_FORK, MODE_EXEC };

struct config {
    int active;               /* the shim acts: settings valid, state set up */
    pid_t pid;                /* this process, as of the constructor or its last fork */
    int protocol;             /* the handoff's HUPTIME_PROTOCOL (1 when absent) */
    enum huptime_mode mode;
    int signo;                /* the restart signal */
    long ready_timeout_ms;
    long drain_timeout_ms;
    long drain_idle_ms;       /* --drain-idle: 0 off */
    int drain_signal;         /* --drain-signal: 0 none */
    char *check;              /* --check: a shell command, or NULL */
    char *probe;              /* --probe: a shell command, or NULL (fork mode only) */
    char *probe_http;         /* --probe-http: a path to GET, or NULL (fork mode only) */
    long probe_timeout_ms;    /* --probe-timeout */
    int backlog;              /* --backlog: listen queues at least this long; 0 as asked */
    int wait_children;        /* --wait: children may finish before the generation ends */
    int generation;           /* 1 for the launcher's start */
    int pending;              /* a restart was requested during the previous one */
    int ready_fd;             /* fork mode, new generation: readiness pipe, or -1 */
    int stdio_out;            /* a kept copy of the first start's stdout, or -1; its
                                 stderr's is log_fd (log.h) */
    int supervisor_fd;        /* link to a supervisor (--revive), or -1 (supervised.h) */
    int supervisor_env_fd;    /* its number in the environment every generation gets */
    int slot;                 /* --multi: which copy of the pool this lineage is, or -1 */
    int inherited[HANDOFF_MAX_FDS];
    int n_inherited;
    char **argv;              /* copies, NULL-terminated */
    char **envp;
    char *cwd;
    char **unlink;            /* --unlink: absolute paths removed when a restart begins */
    char *control;            /* the instance record's directory, or NULL (record.h) */
    int control_fd;           /* that directory, O_PATH, opened while the process had the
                                 privileges it started with (or handed over), or -1 */
    sigset_t start_mask;      /* signal mask at start */
    sigset_t start_ignored;   /* signals ignored at start */
    int notify_program;       /* the program speaks sd_notify (ENV_NOTIFY_PROGRAM): a
                                 generation is ready once it also sent READY=1 (notify.h) */
    int reexec;               /* this image is its leader's exec of itself (reexec.h): the
                                 snapshot above is the one the generation started with */
};

extern struct config cfg __attribute__((visibility("hidden")));

enum config_result {
    CONFIG_INERT,     /* not started by huptime, or a setting is malformed (logged) */
    CONFIG_LOADED,    /* valid settings: the caller sets up the rest, then cfg.active */
    CONFIG_REFUSED,   /* a handoff of a protocol this shim does not speak (cfg.protocol) */
};

/* Constructor: fill cfg from the process's arguments and environment. Logs one
 * line and stays inert when a setting is malformed; ignores (with a log line)
 * handoff descriptors that are not what they claim to be. In an exec'd image
 * (HUPTIME_IGNORED_SIGNALS) it first sets every signal's disposition back to
 * the first start's, whatever else it finds. */
enum config_result config_load(int argc, char **argv, char **envp);

/* Add "NAME=value" to the environment of the generations this one starts; 0 or -1. */
int config_env_add(const char *entry);

/* 1 in a vfork child (posix_spawn, subprocess) that shares the parent's memory:
 * there the shim must not change its state. Costs a getpid(). */
static inline int config_in_vfork_child(void) { return getpid() != cfg.pid; }

#endif
