/* probe.c - run --probe against the twins (probe.h). */
#define _GNU_SOURCE
#include "probe.h"
#include "check.h"
#include "config.h"
#include "twin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_probe_variable(const char *entry)
{
    return strncmp(entry, ENV_PROBE_ADDR "=", sizeof ENV_PROBE_ADDR) == 0 ||
           strncmp(entry, ENV_PROBE_ADDRS "=", sizeof ENV_PROBE_ADDRS) == 0;
}

int probe_passes(char *why, size_t size)
{
    static char addr[256], addrs[HANDOFF_MAX_FDS * 260]; /* the restart thread's only */
    twin_describe(addr, sizeof addr, addrs, sizeof addrs);
    int n = 0;
    while (cfg.envp && cfg.envp[n])
        n++;
    char **envp = malloc((size_t)(n + 3) * sizeof *envp);
    if (!envp) {
        snprintf(why, size, "--probe could not run: out of memory");
        return 0;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!is_probe_variable(cfg.envp[i]))
            envp[k++] = cfg.envp[i];
    envp[k++] = addr;
    envp[k++] = addrs;
    envp[k] = NULL;
    char ran[400];
    int ok = check_command(cfg.probe, envp, cfg.probe_timeout_ms, ran, sizeof ran);
    free(envp);
    if (!ok)
        snprintf(why, size, "--probe %s", ran);
    return ok;
}
