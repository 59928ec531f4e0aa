/* twin.c - --probe's private twins of inherited listeners, and the swap (twin.h). */
#define _GNU_SOURCE
#include "twin.h"
#include "config.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct twin {
    int shared;          /* a copy of the inherited socket (FD_INTERNAL), or -1 */
    ino_t ino;           /* the twin's socket */
    struct sockaddr_storage private_addr;
    socklen_t private_len;
    struct sockaddr_storage shared_addr;
    socklen_t shared_len;
    char shared_text[128], private_text[128];
};

static struct twin twins[HANDOFF_MAX_FDS];
static int n_twins;
static int swap_rd = -1, swap_wr = -1;
/* The swap pipe's reading end while this process holds twins it has not swapped
 * yet, else -1 (twin.h). */
int twin_pending_fd = -1;

int twin_wanted(void)
{
    return (cfg.probe || cfg.probe_http) && cfg.mode == MODE_FORK && cfg.ready_fd >= 0;
}

int twin_count(void) { return n_twins; }

static ino_t inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* The probe's form of an address: host:port, [v6]:port, /path or @name. */
static void probe_text(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
    char text[128];
    if (huptime_format_sockaddr(sa, len, 0, text, sizeof text) <= 0)
        text[0] = '\0';
    const char *shown = strncmp(text, LISTENER_UNIX, strlen(LISTENER_UNIX)) == 0
                            ? text + strlen(LISTENER_UNIX) : text;
    snprintf(out, size, "%s", shown);
}

int twin_make(int fd, int shared)
{
    struct sockaddr_storage have;
    socklen_t have_len = sizeof have;
    if (n_twins >= HANDOFF_MAX_FDS || REAL(getsockname)(shared, (struct sockaddr *)&have, &have_len) < 0)
        return -1;
    union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; } priv;
    socklen_t len;
    memset(&priv, 0, sizeof priv);
    switch (have.ss_family) {
    case AF_INET:
        priv.in.sin_family = AF_INET;
        priv.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof priv.in;
        break;
    case AF_INET6:
        priv.in6.sin6_family = AF_INET6;
        priv.in6.sin6_addr = in6addr_loopback;
        len = sizeof priv.in6;
        break;
    case AF_UNIX:
        priv.sa.sa_family = AF_UNIX;
        len = sizeof(sa_family_t); /* autobind: an abstract name the kernel picks */
        break;
    default:
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (swap_rd < 0) {
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
            return -1;
        swap_rd = p[0];
        swap_wr = p[1];
        reg_adopt(&swap_rd, FD_INTERNAL);
        reg_adopt(&swap_wr, FD_INTERNAL);
    }
    struct twin *t = &twins[n_twins];
    t->shared = REAL(fcntl64)(shared, F_DUPFD_CLOEXEC, 3);
    if (t->shared < 0)
        return -1;
    reg_adopt(&t->shared, FD_INTERNAL);
    if (REAL(bind)(fd, &priv.sa, len) < 0) {
        int e = errno;
        reg_release(&t->shared);
        errno = e;
        return -1;
    }
    struct sockaddr_storage mine;
    socklen_t mine_len = sizeof mine;
    REAL(getsockname)(fd, (struct sockaddr *)&mine, &mine_len);
    t->private_addr = mine;
    t->private_len = mine_len;
    t->shared_addr = have;
    t->shared_len = have_len;
    if (huptime_format_sockaddr((struct sockaddr *)&have, have_len, 0, t->shared_text,
                                sizeof t->shared_text) <= 0) /* as the listeners text says it */
        t->shared_text[0] = '\0';
    probe_text((struct sockaddr *)&mine, mine_len, t->private_text, sizeof t->private_text);
    t->ino = inode_of(fd);
    n_twins++;
    __atomic_store_n(&twin_pending_fd, swap_rd, __ATOMIC_RELEASE);
    log_info("generation %d: %s is bound privately at %s until --probe passes", gen->number,
             t->shared_text, t->private_text);
    return 0;
}

static struct twin *twin_of(int fd)
{
    ino_t ino = inode_of(fd);
    for (int i = 0; ino && i < n_twins; i++)
        if (twins[i].ino == ino && twins[i].shared >= 0)
            return &twins[i];
    return NULL;
}

int twin_sockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct twin *t = addr && len ? twin_of(fd) : NULL;
    if (!t)
        return 0; /* and the real call reports a bad argument as it would */
    memcpy(addr, &t->shared_addr, *len < t->shared_len ? *len : t->shared_len);
    *len = t->shared_len;
    return 1;
}

void twin_listening(int fd)
{
    if (twin_swap_fd() >= 0 && twin_of(fd))
        reg_set_twin(fd);
}

int twin_first(struct sockaddr_storage *addr, socklen_t *len, char *text, size_t size)
{
    if (!n_twins)
        return 0;
    *addr = twins[0].private_addr;
    *len = twins[0].private_len;
    snprintf(text, size, "%s", twins[0].private_text);
    return 1;
}

void twin_describe(char *addr, size_t addr_size, char *addrs, size_t addrs_size)
{
    size_t used = (size_t)snprintf(addrs, addrs_size, ENV_PROBE_ADDRS "=");
    snprintf(addr, addr_size, ENV_PROBE_ADDR "=%s", n_twins ? twins[0].private_text : "");
    for (int i = 0; i < n_twins && used < addrs_size; i++)
        used += (size_t)snprintf(addrs + used, addrs_size - used, "%s%s=%s", i ? "\n" : "",
                                 twins[i].shared_text, twins[i].private_text);
}

void twin_epoll_watch(int epfd)
{
    int rd = twin_swap_fd();
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TWIN_SWAP_MAGIC };
    if (rd >= 0 && REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, rd, &ev) < 0 && errno != EEXIST)
        LOG_DEBUG("cannot add the swap pipe to epoll set %d: %s", epfd, strerror(errno));
}

#define MAX_SETS 16

/* Make fd, a twin, the shared socket: same number, close-on-exec flag, program's
 * blocking choice and epoll registrations. Caller holds reg_lock(). */
static void swap_one(int fd)
{
    struct twin *t = twin_of(fd);
    if (!t)
        return;
    int fdflags = REAL(fcntl64)(fd, F_GETFD);
    int nonblock = reg_program_nonblock(fd);
    int epfds[MAX_SETS];
    struct epoll_event evs[MAX_SETS];
    int n = reg_epoll_of(fd, epfds, evs, MAX_SETS);
    for (int i = 0; i < n; i++)
        REAL(epoll_ctl)(epfds[i], EPOLL_CTL_DEL, fd, NULL);
    if (REAL(dup3)(t->shared, fd, fdflags > 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        log_info("cannot put %s in place of its twin (descriptor %d): %s", t->shared_text, fd,
                 strerror(errno));
        return;
    }
    reg_listener_add(fd, nonblock); /* a listener like any other now: handed over next time */
    for (int i = 0; i < n; i++)
        if (REAL(epoll_ctl)(epfds[i], EPOLL_CTL_ADD, fd, &evs[i]) < 0 && errno != EEXIST)
            log_info("cannot watch %s in epoll set %d: %s", t->shared_text, epfds[i],
                     strerror(errno));
    LOG_DEBUG("descriptor %d is %s now (was its twin %s)", fd, t->shared_text, t->private_text);
}

void twin_swap_here(void)
{
    if (twin_swap_fd() < 0)
        return;
    int swapped = 0;
    reg_lock();
    if (twin_pending_fd >= 0) {
        swapped = 1;
        int hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
        for (int fd = 0; fd < hw; fd++)
            if (reg_kind(fd) == FD_LISTENER && reg_is_twin(fd))
                swap_one(fd);
        int epfds[MAX_SETS];
        struct epoll_event evs[MAX_SETS];
        int n = reg_epoll_of(-1, epfds, evs, MAX_SETS);
        for (int i = 0; i < n; i++)
            REAL(epoll_ctl)(epfds[i], EPOLL_CTL_DEL, swap_rd, NULL);
        __atomic_store_n(&twin_pending_fd, -1, __ATOMIC_RELEASE);
    }
    reg_unlock();
    if (!swapped)
        return;
    for (int i = 0; i < n_twins; i++)
        reg_release(&twins[i].shared);
    /* The pipe's reading end stays open (close-on-exec) for the life of the
     * process: a thread that the write woke looks at its number again, and must
     * find it readable there, not closed or reused by another descriptor (a poll
     * that finds nothing sleeps again, on wait queues it registered before the
     * swap, and would never see the shared socket). */
}

void twin_swap_all(void)
{
    twin_swap_here();
    if (swap_wr >= 0) {
        ssize_t w = REAL(write)(swap_wr, "s", 1); /* stays readable: every process sees it */
        (void)w;
        reg_release(&swap_wr);
    }
    /* A wait the shim does not see (select) wakes when a twin becomes readable:
     * connect to each once; whoever accepts it reads end of file. */
    for (int i = 0; i < n_twins; i++) {
        int c = socket(twins[i].private_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c < 0)
            continue;
        if (connect(c, (struct sockaddr *)&twins[i].private_addr, twins[i].private_len) < 0 &&
            errno != EINPROGRESS)
            LOG_DEBUG("cannot wake the waits on twin %s: %s", twins[i].private_text, strerror(errno));
        REAL(close)(c);
    }
}
