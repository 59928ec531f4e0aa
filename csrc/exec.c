/* exec.c - the exec family: the leader's exec of a new image of itself.
 *
 * A server that reloads by exec'ing itself (same PID) keeps its listening
 * descriptors open across; the shim carries the generation across with them
 * (reexec.h). Only the generation's ready leader's execs are touched; a forked
 * or vfork child's exec (a helper program, posix_spawn) passes unchanged.
 * execl*() and fexecve() are not interposed: glibc runs them without a call
 * the shim could see. A root file of the shim like interpose.c.
 */
#define _GNU_SOURCE
#include "config.h"
#include "handoff.h"
#include "real.h"
#include "reexec.h"
#include "restart.h"

#include <errno.h>
#include <unistd.h>

/* The new image's environment, or NULL to pass the program's unchanged. */
static char **exec_env(char *const envp[])
{
    if (!cfg.active || config_in_vfork_child() || !restart_is_leader())
        return NULL;
    int saved = errno;
    char **env = reexec_prepare(envp);
    errno = saved;
    return env;
}

static int exec_failed(char **env, int r)
{
    if (env) {
        int saved = errno;
        reexec_failed(env);
        errno = saved;
    }
    return r;
}

static int exec_path(const char *path, char *const argv[], char *const envp[])
{
    char **env = exec_env(envp);
    return exec_failed(env, REAL(execve)(path, argv, env ? env : envp));
}

static int exec_search(const char *file, char *const argv[], char *const envp[])
{
    char **env = exec_env(envp);
    return exec_failed(env, REAL(execvpe)(file, argv, env ? env : envp));
}

HUPTIME_API int execve(const char *path, char *const argv[], char *const envp[])
{
    return exec_path(path, argv, envp);
}

HUPTIME_API int execv(const char *path, char *const argv[])
{
    return exec_path(path, argv, environ);
}

HUPTIME_API int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return exec_search(file, argv, envp);
}

HUPTIME_API int execvp(const char *file, char *const argv[])
{
    return exec_search(file, argv, environ);
}
