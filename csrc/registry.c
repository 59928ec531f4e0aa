/* registry.c - descriptor kinds, listeners, epoll registrations, connection counts. */
#define _GNU_SOURCE
#include "registry.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "real.h"

#include <fcntl.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

uint8_t reg_kinds[REG_MAX_FD];
uint8_t reg_listener_bits[REG_MAX_FD];
uint8_t reg_wait_hints[REG_MAX_FD];
int reg_high_water;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

#define MAX_EPOLL_REGS 256
static struct { int epfd, fd; struct epoll_event ev; } epoll_regs[MAX_EPOLL_REGS];
static int n_epoll_regs;

static struct { int *slot; enum fd_kind kind; } slots[REG_MAX_SLOTS];

static int tracked(int fd) { return reg_tracked(fd); }


void reg_lock(void) { pthread_mutex_lock(&lock); }
void reg_unlock(void) { pthread_mutex_unlock(&lock); }
void reg_reset_lock(void) { pthread_mutex_init(&lock, NULL); }

void reg_listener_add(int fd, int nonblock)
{
    if (!tracked(fd))
        return;
    reg_listener_bits[fd] = (uint8_t)(nonblock != 0);
    reg_wait_hints[fd] = 0;
    reg_set_kind(fd, FD_LISTENER);
}

void reg_set_twin(int fd)
{
    if (tracked(fd))
        __atomic_fetch_or(&reg_listener_bits[fd], (uint8_t)REG_TWIN_BIT, __ATOMIC_RELAXED);
}

void reg_set_program_nonblock(int fd, int on)
{
    if (!tracked(fd))
        return;
    if (on) /* atomically: take() rewrites the other bits of the byte meanwhile */
        __atomic_fetch_or(&reg_listener_bits[fd], (uint8_t)1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_and(&reg_listener_bits[fd], (uint8_t)~1, __ATOMIC_RELAXED);
}

int reg_handed_over(int *out)
{
    int n = 0, hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
    for (int fd = 0; fd < hw; fd++)
        if (reg_is_handed_over(reg_kind(fd)) && !reg_is_twin(fd)) {
            if (n < HANDOFF_MAX_FDS)
                out[n] = fd;
            n++;
        }
    return n;
}

int reg_next(int from, enum fd_kind kind)
{
    int hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
    for (int fd = from < 0 ? 0 : from; fd < hw; fd++)
        if (reg_kind(fd) == (int)kind)
            return fd;
    return -1;
}

void reg_describe_handed_over(char *buf, size_t size)
{
    int fds[HANDOFF_MAX_FDS];
    int n = reg_handed_over(fds);
    size_t used = 0;
    if (n > HANDOFF_MAX_FDS)
        n = HANDOFF_MAX_FDS;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char one[160];
        if (REAL(getsockname)(fds[i], (struct sockaddr *)&ss, &len) < 0)
            continue;
        int w = huptime_format_sockaddr((struct sockaddr *)&ss, len, reg_kind(fds[i]) == FD_DGRAM,
                                        one, sizeof one);
        if (w <= 0 || used + (used > 0) + (size_t)w + 1 > size)
            continue;
        if (used > 0)
            buf[used++] = ' ';
        memcpy(buf + used, one, (size_t)w + 1);
        used += (size_t)w;
    }
}

void reg_conn_opened(int fd)
{
    if (!tracked(fd))
        return;
    reg_set_kind(fd, FD_CONN);
    gen_conn_add(1);
}

int reg_count_conns(void)
{
    int n = 0, hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
    for (int fd = 0; fd < hw; fd++)
        n += reg_kind(fd) == FD_CONN;
    return n;
}

void reg_conns_cloexec(void)
{
    int hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
    for (int fd = 0; fd < hw; fd++)
        if (reg_kind(fd) == FD_CONN)
            REAL(fcntl64)(fd, F_SETFD, FD_CLOEXEC);
}

void reg_epoll_added(int epfd, int fd, const struct epoll_event *ev)
{
    reg_lock();
    for (int i = 0; i < n_epoll_regs; i++)
        if (epoll_regs[i].epfd == epfd && epoll_regs[i].fd == fd) {
            if (ev)
                epoll_regs[i].ev = *ev;
            goto out;
        }
    if (n_epoll_regs < MAX_EPOLL_REGS) {
        epoll_regs[n_epoll_regs].epfd = epfd;
        epoll_regs[n_epoll_regs].fd = fd;
        epoll_regs[n_epoll_regs].ev = ev ? *ev : (struct epoll_event){ .events = EPOLLIN };
        n_epoll_regs++;
    } else {
        static int said;
        log_once(&said, "more than %d epoll registrations of listeners; "
                 "the rest are not removed at restart", MAX_EPOLL_REGS);
    }
    reg_set_kind(epfd, FD_EPOLL);
out:
    reg_unlock();
}

/* Caller holds the lock. */
static void epoll_forget(int epfd, int fd)
{
    for (int i = 0; i < n_epoll_regs;)
        if (epoll_regs[i].epfd == epfd && (fd < 0 || epoll_regs[i].fd == fd))
            epoll_regs[i] = epoll_regs[--n_epoll_regs];
        else
            i++;
}

int reg_epoll_of(int fd, int *epfds, struct epoll_event *evs, int max)
{
    int n = 0;
    for (int i = 0; i < n_epoll_regs && n < max; i++) {
        int seen = 0;
        for (int j = 0; fd < 0 && j < n; j++)
            seen |= epfds[j] == epoll_regs[i].epfd;
        if (seen || (fd >= 0 && epoll_regs[i].fd != fd))
            continue;
        epfds[n] = epoll_regs[i].epfd;
        evs[n++] = epoll_regs[i].ev;
    }
    return n;
}

void reg_epoll_removed(int epfd, int fd)
{
    reg_lock();
    epoll_forget(epfd, fd);
    reg_unlock();
}

void reg_epoll_drop_all(int wake_fd)
{
    for (int i = 0; i < n_epoll_regs; i++) {
        int epfd = epoll_regs[i].epfd;
        REAL(epoll_ctl)(epfd, EPOLL_CTL_DEL, epoll_regs[i].fd, NULL);
        if (wake_fd >= 0)
            REAL(epoll_ctl)(epfd, EPOLL_CTL_DEL, wake_fd, NULL);
        if (reg_kind(epfd) == FD_EPOLL)
            reg_set_kind(epfd, FD_NONE);
    }
    n_epoll_regs = 0;
}

/* Forget what fd was, counting down a connection. */
static void forget(int fd)
{
    switch (reg_kind(fd)) {
    case FD_CONN:
        reg_conn_closing(fd);
        break;
    case FD_EPOLL:
        reg_lock();
        epoll_forget(fd, -1);
        reg_unlock();
        reg_set_kind(fd, FD_NONE);
        break;
    case FD_LISTENER:
    case FD_DGRAM:
        reg_lock();
        for (int i = 0; i < n_epoll_regs;)
            if (epoll_regs[i].fd == fd)
                epoll_regs[i] = epoll_regs[--n_epoll_regs];
            else
                i++;
        reg_unlock();
        reg_set_kind(fd, FD_NONE);
        break;
    case FD_STOPPED:
        reg_set_kind(fd, FD_NONE);
        break;
    default:
        break;
    }
}

int reg_closing(int fd)
{
    int k = reg_kind(fd);
    if (k == FD_INTERNAL || k == FD_INHERITED)
        return 1;
    forget(fd);
    return 0;
}

void reg_duped(int oldfd, int newfd)
{
    switch (reg_kind(oldfd)) {
    case FD_CONN:
        reg_conn_opened(newfd);
        break;
    case FD_LISTENER:
    case FD_STOPPED:
        reg_listener_add(newfd, reg_program_nonblock(oldfd));
        reg_set_kind(newfd, reg_kind(oldfd));
        if (reg_is_twin(oldfd))
            reg_set_twin(newfd);
        break;
    case FD_DGRAM:
        reg_set_kind(newfd, FD_DGRAM);
        break;
    default:
        break;
    }
}

void reg_adopt(int *slot, enum fd_kind kind)
{
    int i;
    reg_lock();
    reg_set_kind(*slot, kind); /* protected from close() even without a slot */
    for (i = 0; i < REG_MAX_SLOTS && slots[i].slot; i++)
        ;
    if (i < REG_MAX_SLOTS) {
        slots[i].slot = slot;
        slots[i].kind = kind;
    }
    reg_unlock();
    if (i == REG_MAX_SLOTS) {
        static int said;
        log_once(&said, "more than %d descriptors to protect: descriptor %d cannot be moved "
                 "if the program dup2()s onto it", REG_MAX_SLOTS, *slot);
    }
}

void reg_release(int *slot)
{
    reg_lock();
    for (int i = 0; i < REG_MAX_SLOTS; i++)
        if (slots[i].slot == slot)
            slots[i].slot = NULL;
    reg_unlock();
    if (*slot >= 0) {
        reg_set_kind(*slot, FD_NONE);
        REAL(close)(*slot);
        *slot = -1;
    }
}

void reg_retarget(int fd)
{
    int k = reg_kind(fd);
    if (k != FD_INTERNAL && k != FD_INHERITED) {
        forget(fd);
        return;
    }
    reg_lock();
    for (int i = 0; i < REG_MAX_SLOTS; i++) {
        if (!slots[i].slot || *slots[i].slot != fd)
            continue;
        int cmd = slots[i].kind == FD_INTERNAL ? F_DUPFD_CLOEXEC : F_DUPFD;
        int moved = REAL(fcntl64)(fd, cmd, fd + 1);
        if (moved >= 0) {
            reg_set_kind(moved, slots[i].kind);
            *slots[i].slot = moved;
            LOG_DEBUG("moved descriptor %d to %d: the program wants its number", fd, moved);
        }
        break;
    }
    reg_set_kind(fd, FD_NONE);
    reg_unlock();
}
