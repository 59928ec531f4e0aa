/* inherit.c - claim inherited listeners on bind(); close the unclaimed at readiness. */
#define _GNU_SOURCE
#include "inherit.h"
#include "clock.h"
#include "config.h"
#include "generation.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

static int unclaimed_closed;

void inherit_adopt(void)
{
    for (int i = 0; i < cfg.n_inherited; i++)
        reg_adopt(&cfg.inherited[i], FD_INHERITED);
}

static int sock_int(int fd, int opt)
{
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

int inherit_match(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct sockaddr_storage have;
    int type = sock_int(fd, SO_TYPE);
    for (int i = 0; i < cfg.n_inherited; i++) {
        int old = cfg.inherited[i];
        socklen_t hlen = sizeof have;
        if (old >= 0 && REAL(getsockname)(old, (struct sockaddr *)&have, &hlen) == 0 &&
            huptime_sockaddr_same(addr, len, (struct sockaddr *)&have, hlen) &&
            sock_int(old, SO_TYPE) == type)
            return i;
    }
    return -1;
}

void inherit_release(int i) { reg_release(&cfg.inherited[i]); }

int inherit_claim(int fd, const struct sockaddr *addr, socklen_t len)
{
    int type = sock_int(fd, SO_TYPE);
    int i = inherit_match(fd, addr, len);
    if (i >= 0) {
        int old = cfg.inherited[i];
        int fdflags = REAL(fcntl64)(fd, F_GETFD);
        int flflags = REAL(fcntl64)(fd, F_GETFL);
        if (fdflags < 0 || flflags < 0)
            return 0;
        if (REAL(dup3)(old, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
            return 0;
        reg_release(&cfg.inherited[i]);
        LOG_DEBUG("claimed inherited socket %d as descriptor %d", old, fd);
        if (type == SOCK_DGRAM) {
            /* No accept to emulate: the program's blocking choice is applied to
             * the socket itself, and there is no listen() to come. */
            int have = REAL(fcntl64)(fd, F_GETFL);
            if (have >= 0)
                REAL(fcntl64)(fd, F_SETFL, (have & ~O_NONBLOCK) | (flflags & O_NONBLOCK));
            return SOCK_DGRAM;
        }
        /* The shared socket stays non-blocking underneath; the program's own
         * choice is what it set on the socket it created. */
        reg_listener_add(fd, (flflags & O_NONBLOCK) != 0);
        return SOCK_STREAM;
    }
    return 0;
}

int inherit_unclaimed(void)
{
    int n = 0;
    for (int i = 0; i < cfg.n_inherited; i++)
        n += __atomic_load_n(&cfg.inherited[i], __ATOMIC_RELAXED) >= 0;
    return n;
}

#define CLAIM_GRACE_MS 2000

void inherit_settle(void)
{
    long deadline = now_ms() + CLAIM_GRACE_MS;
    while (inherit_unclaimed() > 0 && now_ms() < deadline) {
        struct timespec tick = { 0, 5 * 1000000 };
        nanosleep(&tick, NULL);
    }
    int left = inherit_unclaimed();
    if (left > 0)
        log_info("generation %d: %d inherited listener%s not bound by the program within "
                 "%d ms; %s", gen->number, left, left == 1 ? "" : "s", CLAIM_GRACE_MS,
                 gen->number == 1 ? "left open and unused (passed by socket activation)"
                                  : left == 1 ? "closing it" : "closing them");
}

int inherit_protects_path(int dirfd, const char *path)
{
    struct stat target, bound;
    if (!inherit_unclaimed() || !path || fstatat(dirfd, path, &target, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISSOCK(target.st_mode))
        return 0;
    for (int i = 0; i < cfg.n_inherited; i++) {
        struct sockaddr_un un;
        socklen_t len = sizeof un;
        int fd = cfg.inherited[i];
        if (fd < 0 || REAL(getsockname)(fd, (struct sockaddr *)&un, &len) < 0 ||
            un.sun_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
            un.sun_path[0] == '\0')
            continue;
        char name[sizeof un.sun_path + 1];
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (n > sizeof un.sun_path)
            n = sizeof un.sun_path;
        memcpy(name, un.sun_path, n);
        name[n] = '\0';
        if (stat(name, &bound) == 0 && bound.st_dev == target.st_dev &&
            bound.st_ino == target.st_ino) {
            LOG_DEBUG("kept %s: an inherited listener is bound to it", path);
            return 1;
        }
    }
    return 0;
}

/* Generation 1's inherited sockets came from socket activation (systemd's, which
 * keeps its own copies): the ones the program did not bind stay open, unused. */
void inherit_close_unclaimed(void)
{
    if (__atomic_load_n(&unclaimed_closed, __ATOMIC_RELAXED) || !gen_is_ready() ||
        __atomic_exchange_n(&unclaimed_closed, 1, __ATOMIC_SEQ_CST) || gen->number == 1)
        return;
    for (int i = 0; i < cfg.n_inherited; i++)
        if (cfg.inherited[i] >= 0) {
            LOG_DEBUG("closing inherited listener %d: the program did not bind its address",
                      cfg.inherited[i]);
            reg_release(&cfg.inherited[i]);
        }
}
