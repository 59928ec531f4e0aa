/* privileges.c - the setuid family: a program that gives up root keeps its record.
 *
 * A daemon that binds as root and then drops to another user would lose its
 * instance record: its directory is root's, and so are the generation pages and
 * the events file. When the generation's leader is about to change its effective
 * uid from root to another, the record is first handed to that uid (record.h),
 * so this generation and the ones it starts, which run as that uid, can still
 * write it. Workers (nginx's, dropping to `user`) leave it alone. A root file of
 * the shim like interpose.c: the next definitions are looked up here because
 * nothing else calls them.
 */
#define _GNU_SOURCE
#include "config.h"
#include "handoff.h"
#include "record.h"
#include "restart.h"

#include <dlfcn.h>
#include <errno.h>
#include <unistd.h>

static void *next_definition(void **cache, const char *name)
{
    void *fn = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (!fn) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(cache, fn, __ATOMIC_RELAXED);
    }
    if (!fn)
        errno = ENOSYS;
    return fn;
}

/* euid: the effective uid the call asks for; -1 leaves it unchanged. */
static void before(uid_t euid)
{
    if (cfg.active && euid != (uid_t)-1 && euid != 0 && geteuid() == 0 &&
        !config_in_vfork_child() && restart_is_leader()) {
        int saved = errno;
        record_give(euid);
        errno = saved;
    }
}

HUPTIME_API int setuid(uid_t uid)
{
    static void *cache;
    int (*next)(uid_t) = (int (*)(uid_t))next_definition(&cache, "setuid");
    before(uid);
    return next ? next(uid) : -1;
}

HUPTIME_API int seteuid(uid_t euid)
{
    static void *cache;
    int (*next)(uid_t) = (int (*)(uid_t))next_definition(&cache, "seteuid");
    before(euid);
    return next ? next(euid) : -1;
}

HUPTIME_API int setreuid(uid_t ruid, uid_t euid)
{
    static void *cache;
    int (*next)(uid_t, uid_t) = (int (*)(uid_t, uid_t))next_definition(&cache, "setreuid");
    before(euid);
    return next ? next(ruid, euid) : -1;
}

HUPTIME_API int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
    static void *cache;
    int (*next)(uid_t, uid_t, uid_t) =
        (int (*)(uid_t, uid_t, uid_t))next_definition(&cache, "setresuid");
    before(euid);
    return next ? next(ruid, euid, suid) : -1;
}
