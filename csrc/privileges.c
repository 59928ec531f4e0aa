/* privileges.c - the setuid family: a program that gives up root keeps its record.
 *
 * A daemon that binds as root and then drops to another user would lose its
 * instance record: its directory is root's, and so are the generation pages and
 * the events file. When the generation's leader is about to change its effective
 * uid from root to another, the record is first handed to that uid (record.h),
 * so this generation and the ones it starts, which run as that uid, can still
 * write it. Workers (nginx's, dropping to `user`) leave it alone. A root file of
 * the shim like interpose.c.
 */
#define _GNU_SOURCE
#include "config.h"
#include "handoff.h"
#include "real.h"
#include "record.h"
#include "restart.h"

#include <errno.h>
#include <unistd.h>

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
    before(uid);
    return REAL(setuid)(uid);
}

HUPTIME_API int seteuid(uid_t euid)
{
    before(euid);
    return REAL(seteuid)(euid);
}

HUPTIME_API int setreuid(uid_t ruid, uid_t euid)
{
    before(euid);
    return REAL(setreuid)(ruid, euid);
}

HUPTIME_API int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
    before(euid);
    return REAL(setresuid)(ruid, euid, suid);
}
