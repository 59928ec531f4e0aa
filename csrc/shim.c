/* shim.c - the constructor, the destructor and the fork hooks: inert unless
 * huptime started this process. */
#define _GNU_SOURCE
#include "config.h"
#include "gate.h"
#include "generation.h"
#include "inherit.h"
#include "lastthread.h"
#include "log.h"
#include "notify.h"
#include "predecessor.h"
#include "real.h"
#include "reexec.h"
#include "record.h"
#include "registry.h"
#include "restart.h"
#include "signals.h"
#include "supervised.h"

#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Exit status of a new generation whose shim does not speak the handoff's
 * protocol (sysexits' EX_CONFIG): the old generation rolls back and says so. */
#define EXIT_PROTOCOL 78

static void fork_prepare(void)
{
    restart_before_fork();
    reg_lock();
}

static void fork_parent(void)
{
    reg_unlock();
    restart_after_fork_parent();
}

static void fork_child(void)
{
    reg_reset_lock();
    cfg.pid = getpid();
    restart_after_fork_child();
    gen_conn_add(reg_count_conns()); /* the child holds these connections too */
    gate_dgram_forked();
}

/* A handoff this shim cannot read: a shim of another version wrote it (a
 * package upgrade replaced the library under a running server). Fork mode: the
 * new generation ends before the program runs, and the old one keeps serving.
 * Exec mode has no old generation left: the program starts afresh, without the
 * handed-over sockets and without restarts. */
static void refuse_handoff(void)
{
    log_info("generation %d cannot take over: the handoff speaks protocol %d, this huptime "
             "speaks %d to %d; %s", cfg.generation, cfg.protocol, HUPTIME_PROTOCOL_MIN,
             HUPTIME_PROTOCOL_VERSION, cfg.mode == MODE_EXEC
             ? "starting the program afresh, without restarts (start it with huptime again)"
             : "the running generation keeps serving (restart it with huptime again)");
    record_event(cfg.generation, EVENT_FAILED " protocol %d is not understood by this huptime "
                 "(%d to %d)", cfg.protocol, HUPTIME_PROTOCOL_MIN, HUPTIME_PROTOCOL_VERSION);
    if (cfg.mode == MODE_FORK)
        _exit(EXIT_PROTOCOL);
    for (int i = 0; i < cfg.n_inherited; i++)
        REAL(close)(cfg.inherited[i]);
}

/* Copies of the first start's stdout and stderr that the program's redirections
 * (a daemon pointing 0-2 at /dev/null) do not touch: the shim logs to the second,
 * and every new generation starts with both on 1 and 2. A new generation gets
 * them in HUPTIME_STDIO_FDS (config.c); the first start makes them. */
static void keep_stdio(void)
{
    if (cfg.stdio_out < 0) {
        cfg.stdio_out = REAL(fcntl64)(1, F_DUPFD_CLOEXEC, 3);
        int err = REAL(fcntl64)(2, F_DUPFD_CLOEXEC, 3);
        if (err >= 0)
            log_fd = err;
    }
    if (cfg.stdio_out >= 0)
        reg_adopt(&cfg.stdio_out, FD_INTERNAL);
    if (log_fd > 2)
        reg_adopt(&log_fd, FD_INTERNAL);
}

/* A new image of the generation's leader (its program exec'd itself, same
 * PID): the listening sockets it kept open are the generation's, as they were. */
static void take_own_listeners(const char *program)
{
    int fds[HANDOFF_MAX_FDS];
    int n = reexec_open_sockets(fds, HANDOFF_MAX_FDS);
    for (int i = 0; i < n; i++)
        gate_listening(fds[i]);
    log_info("generation %d: pid %d is a new image (%s) with %d listening socket%s kept",
             cfg.generation, (int)getpid(), program, n, n == 1 ? "" : "s");
    if (n > 0)
        restart_socket_added();
}

__attribute__((constructor)) static void huptime_start(int argc, char **argv, char **envp)
{
    real_init();
    enum config_result loaded = config_load(argc, argv, envp);
    if (loaded == CONFIG_REFUSED)
        refuse_handoff();
    if (loaded != CONFIG_LOADED)
        return;
    /* The leader exec'd itself (reexec.h): the same generation goes on, in the
     * same page when there is a record. */
    int reexec = cfg.reexec;
    struct gen_page *page = reexec ? record_reopen_page(cfg.generation, GEN_PAGE_SIZE) : NULL;
    if (!page)
        page = record_map_page(cfg.generation, GEN_PAGE_SIZE);
    if (!page) {
        log_info("cannot map the generation page: %s; behaving like plain libc", strerror(errno));
        return;
    }
    if (gen_init(page, cfg.generation) < 0) {
        munmap(page, GEN_PAGE_SIZE);
        record_forget(cfg.generation);
        return;
    }
    reg_adopt(&gen_wake_rd, FD_INTERNAL);
    reg_adopt(&gen_wake_wr, FD_INTERNAL);
    keep_stdio();
    if (cfg.mode == MODE_EXEC && cfg.generation > 1 && !reexec)
        record_forget(cfg.generation - 1); /* this process, before its exec */
    inherit_adopt();
    predecessor_init();
    supervised_init();
    notify_init();
    if (signals_init() < 0)
        return;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    lastthread_watch();
    if (cfg.pending)
        signals_request(); /* handled once this generation is ready */
    cfg.active = 1;
    if (reexec)
        take_own_listeners(argv ? argv[0] : "?");
    LOG_DEBUG("active: generation %d, %s mode, signal %d, %d inherited listener%s",
              cfg.generation, cfg.mode == MODE_EXEC ? "exec" : "fork", cfg.signo,
              cfg.n_inherited, cfg.n_inherited == 1 ? "" : "s");
}

/* The program ends by itself (exit or return from main): the record says so. */
__attribute__((destructor)) static void huptime_end(void)
{
    if (!cfg.active || !restart_is_leader() || config_in_vfork_child() ||
        gen_leader() != (int)getpid() || restart_may_hand_over())
        return; /* not the leader, or a daemonizing parent: its child takes over */
    if (gen_is_ready() && !gen_draining()) /* the main process: the service ends */
        notify_send("STOPPING=1\nSTATUS=generation %d exits", gen->number);
    record_event(gen->number, EVENT_EXITED);
    record_forget(gen->number);
}
