/* shim.c - the constructor: inert unless huptime started this process. */
#define _GNU_SOURCE
#include "shim.h"
#include "config.h"
#include "generation.h"
#include "inherit.h"
#include "log.h"
#include "real.h"
#include "restart.h"

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
    inherit_adopt();
    if (restart_init() < 0)
        return;
    cfg.active = 1;
    LOG_DEBUG("active: generation %d, %s mode, signal %d, %d inherited listener%s",
              cfg.generation, cfg.mode == MODE_EXEC ? "exec" : "fork", cfg.signo,
              cfg.n_inherited, cfg.n_inherited == 1 ? "" : "s");
}
