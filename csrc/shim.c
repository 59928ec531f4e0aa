/* shim.c - the constructor: inert unless huptime started this process. */
#define _GNU_SOURCE
#include "shim.h"
#include "config.h"
#include "control.h"
#include "generation.h"
#include "inherit.h"
#include "log.h"
#include "real.h"
#include "restart.h"
#include "supervised.h"

#include <unistd.h>

pid_t shim_pid;

int shim_in_vfork_child(void)
{
    return getpid() != shim_pid;
}

__attribute__((constructor)) static void huptime_start(int argc, char **argv, char **envp)
{
    real_init();
    if (!config_load(argc, argv, envp))
        return;
    shim_pid = getpid();
    if (gen_init(cfg.generation) < 0)
        return;
    if (cfg.mode == MODE_EXEC && cfg.generation > 1)
        control_forget(cfg.generation - 1); /* this process, before its exec */
    inherit_adopt();
    supervised_init();
    if (restart_init() < 0)
        return;
    cfg.active = 1;
    LOG_DEBUG("active: generation %d, %s mode, signal %d, %d inherited listener%s",
              cfg.generation, cfg.mode == MODE_EXEC ? "exec" : "fork", cfg.signo,
              cfg.n_inherited, cfg.n_inherited == 1 ? "" : "s");
}

/* The program ends by itself (exit or return from main): the record says so. */
__attribute__((destructor)) static void huptime_end(void)
{
    if (!cfg.active || !restart_is_leader() || shim_in_vfork_child() ||
        __atomic_load_n(&gen->leader, __ATOMIC_SEQ_CST) != (int)getpid() ||
        restart_may_hand_over())
        return; /* not the leader, or a daemonizing parent: its child takes over */
    control_event(gen->number, "exited");
    control_forget(gen->number);
}
