/* held.c - which connections of this generation's listeners its processes hold (held.h). */
#define _GNU_SOURCE
#include "held.h"
#include "children.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "pidfd.h"
#include "real.h"
#include "registry.h"
#include "sockdiag.h"

#include <dirent.h>
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The stream listeners' local addresses, taken before the stop. */
static struct { sa_family_t family; in_port_t port; } tcp[HANDOFF_MAX_FDS];
static int n_tcp;
static struct unix_name unix_names[HANDOFF_MAX_FDS];
static int n_unix;

enum { MAX_PROCESSES = 4096, DIRECT_MAX = 512 };

/* The index in tcp[] of the listener an AF_INET/AF_INET6 address's port is
 * (n_tcp if none), with that port in *port. */
static int tcp_listener(const struct sockaddr_storage *ss, in_port_t *port)
{
    *port = ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                     : ((const struct sockaddr_in6 *)ss)->sin6_port;
    int i;
    for (i = 0; i < n_tcp && (tcp[i].family != ss->ss_family || tcp[i].port != *port); i++)
        ;
    return i;
}

void held_prepare(void)
{
    n_tcp = n_unix = 0;
    for (int fd = reg_next(0, FD_LISTENER); fd >= 0; fd = reg_next(fd + 1, FD_LISTENER)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) < 0)
            continue;
        if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && n_tcp < HANDOFF_MAX_FDS) {
            in_port_t port;
            if (tcp_listener(&ss, &port) == n_tcp) {
                tcp[n_tcp].family = ss.ss_family;
                tcp[n_tcp++].port = port;
            }
        } else if (ss.ss_family == AF_UNIX && n_unix < HANDOFF_MAX_FDS &&
                   len > offsetof(struct sockaddr_un, sun_path)) {
            memcpy(&unix_names[n_unix].addr, &ss, sizeof unix_names[n_unix].addr);
            unix_names[n_unix++].len = len;
        }
    }
}

/* Quiet both ways for idle_ms, nothing unread or unsent, and the server spoke
 * last: it has sent data (a connection whose first request is still arriving
 * has not), no later than it last received any. Both ages count in the same
 * clock ticks, so an answer sent within the tick of its request ties: taken as
 * answered. A kernel whose tcp_info lacks the data segment count never closes. */
static int quiet(const struct tcp_quiet *q, long idle_ms)
{
    return q->known && q->state == ST_ESTABLISHED && !q->unread && !q->unsent && !q->unacked &&
           q->data_segs_out > 0 && q->last_sent_ms >= idle_ms && q->last_recv_ms >= idle_ms &&
           q->last_sent_ms <= q->last_recv_ms;
}

static int by_inode(const void *a, const void *b)
{
    unsigned long x = ((const struct diag_sock *)a)->inode;
    unsigned long y = ((const struct diag_sock *)b)->inode;
    return x < y ? -1 : x > y;
}

/* root and its descendants, but not `except` and its own. */
static int process_tree(pid_t root, pid_t except, pid_t *out, int max)
{
    int n = 0;
    out[n++] = root;
    for (int i = 0; i < n; i++) {
        int m = children_of(out[i], out + n, max - n);
        for (int k = n; k < n + m; k++) /* leave `except` (and so its subtree) out */
            if (out[k] == except) {
                m--;
                out[k] = out[n + m];
                k--;
            }
        n += m;
    }
    return n;
}

/* Shut the connection down under the program (both ways: it reads an end of
 * file, the client too), through a copy of its descriptor; checked to be the
 * same socket, since the program may have reused the number meanwhile. */
static int shut_down(pid_t pid, int fd, unsigned long inode)
{
    static int warned;
    int pidfd = pidfd_open(pid), copy = -1, ok = 0;
    struct stat st;
    if (pidfd >= 0)
        copy = pidfd_getfd(pidfd, fd);
    if (copy >= 0 && fstat(copy, &st) == 0 && st.st_ino == inode)
        ok = shutdown(copy, SHUT_RDWR) == 0;
    else if (copy < 0)
        log_once(&warned, "--drain-idle: cannot reach the connections of pid %d (%s); idle ones "
                 "stay open", (int)pid, strerror(errno));
    if (copy >= 0)
        REAL(close)(copy);
    if (pidfd >= 0)
        REAL(close)(pidfd);
    return ok;
}

/* The sockets the generation's processes have open: (pid, fd, inode). */
struct sock {
    pid_t pid;
    int fd;
    unsigned long inode;
};

struct socks {
    struct sock *v;
    int n, cap;
};

static int list_sockets(pid_t pid, struct socks *s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *fds = opendir(path);
    if (!fds)
        return 0; /* gone meanwhile */
    struct dirent *e;
    int r = 0;
    while ((e = readdir(fds))) {
        char link[64];
        ssize_t k = readlinkat(dirfd(fds), e->d_name, link, sizeof link - 1);
        if (k <= 8 || memcmp(link, "socket:[", 8) != 0)
            continue;
        link[k] = '\0';
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 64;
            struct sock *v = realloc(s->v, (size_t)cap * sizeof *v);
            if (!v) {
                r = -1;
                break;
            }
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = (struct sock){ pid, atoi(e->d_name), strtoul(link + 8, NULL, 10) };
    }
    closedir(fds);
    return r;
}

/* A stream socket accepted from one of the listeners (never a listener): 1. A
 * TCP connection the kernel already closed (reset) is not one. *q: what the
 * idle test needs (zeroes for a Unix socket). */
static int is_connection(int fd, struct tcp_quiet *q)
{
    struct tcp_info tinfo, *ti = &tinfo;
    memset(q, 0, sizeof *q);
    int v = 0;
    socklen_t len = sizeof v;
    struct sockaddr_storage ss;
    socklen_t slen = sizeof ss;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM ||
        REAL(getsockname)(fd, (struct sockaddr *)&ss, &slen) < 0)
        return 0;
    if (ss.ss_family == AF_UNIX) {
        for (int i = 0; i < n_unix; i++)
            if (huptime_sockaddr_same((struct sockaddr *)&ss, slen,
                                      (struct sockaddr *)&unix_names[i].addr, unix_names[i].len))
                return 1;
        return 0;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0;
    in_port_t port;
    int i = tcp_listener(&ss, &port);
    socklen_t tlen = sizeof *ti;
    int unread = 0, unsent = 0;
    if (i == n_tcp || getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &tlen) < 0)
        return i < n_tcp;
    if (REAL(ioctl)(fd, SIOCINQ, &unread) < 0 || REAL(ioctl)(fd, SIOCOUTQ, &unsent) < 0)
        unread = unsent = 1; /* not known to be empty: never idle */
    sockdiag_quiet(q, ti, tlen, (unsigned)unread, (unsigned)unsent);
    return ti->tcpi_state != ST_CLOSE;
}

/* Few sockets: look at each through a copy of its descriptor (pidfd_getfd),
 * which costs microseconds where a socket table dump walks the whole table.
 * Returns how many are held, or -1 if copies cannot be had (then the dump). */
static int held_direct(const struct socks *s, long idle_ms, int *closed)
{
    int held = 0, pidfd = -1;
    pid_t current = -1;
    for (int i = 0; i < s->n && held >= 0; i++) {
        const struct sock *k = &s->v[i];
        if (k->pid != current) {
            if (pidfd >= 0)
                REAL(close)(pidfd);
            current = k->pid;
            pidfd = pidfd_open(current);
        }
        if (pidfd < 0)
            continue; /* gone meanwhile */
        int copy = pidfd_getfd(pidfd, k->fd);
        if (copy < 0) {
            if (errno != EBADF && errno != ESRCH)
                held = -1; /* not allowed here, or no such call: the dump decides */
            continue;
        }
        struct stat st;
        struct tcp_quiet q;
        if (fstat(copy, &st) == 0 && st.st_ino == k->inode && is_connection(copy, &q)) {
            held++;
            if (idle_ms > 0 && quiet(&q, idle_ms))
                *closed += shutdown(copy, SHUT_RDWR) == 0;
        }
        REAL(close)(copy);
    }
    if (pidfd >= 0)
        REAL(close)(pidfd);
    return held;
}

/* Many sockets: one dump of the socket tables per listener port, joined with the
 * inodes the processes hold. Returns how many are held, or -1. */
static int held_by_dump(const struct socks *s, long idle_ms, int *closed)
{
    struct diag_list conns = { NULL, 0, 0 };
    int held = -1;
    for (int i = 0; i < n_tcp; i++)
        if (sockdiag_tcp(&conns, tcp[i].family, tcp[i].port, idle_ms > 0) < 0)
            goto out;
    if (n_unix > 0 && sockdiag_unix(&conns, unix_names, n_unix) < 0)
        goto out;
    if (conns.n > 1)
        qsort(conns.v, (size_t)conns.n, sizeof *conns.v, by_inode);
    held = 0;
    for (int i = 0; i < s->n && conns.n > 0; i++) {
        struct diag_sock key = { .inode = s->v[i].inode };
        struct diag_sock *c = bsearch(&key, conns.v, (size_t)conns.n, sizeof *conns.v, by_inode);
        if (!c)
            continue;
        held++;
        if (idle_ms > 0 && quiet(&c->quiet, idle_ms)) {
            c->quiet.known = 0; /* once per round, whoever else holds it */
            *closed += shut_down(s->v[i].pid, s->v[i].fd, c->inode);
        }
    }
out:
    sockdiag_free(&conns);
    return held;
}

/* The connections held by root's tree (but `except`'s), as held_count says. */
static int held_in_tree(pid_t root, pid_t except, long idle_ms, int *closed)
{
    static int warned;
    struct socks s = { NULL, 0, 0 };
    pid_t *pids = malloc(MAX_PROCESSES * sizeof *pids);
    int held = -1;
    *closed = 0;
    if (!pids)
        goto out;
    int n = process_tree(root, except, pids, MAX_PROCESSES);
    for (int i = 0; i < n; i++)
        if (list_sockets(pids[i], &s) < 0)
            goto out;
    if (s.n <= DIRECT_MAX)
        held = held_direct(&s, idle_ms, closed);
    if (held < 0)
        held = held_by_dump(&s, idle_ms, closed);
out:
    if (held < 0)
        log_once(&warned, "cannot see this generation's connections in the kernel (%s): the "
                 "drain follows the shim's own count", strerror(errno));
    free(s.v);
    free(pids);
    return held;
}

int held_count(pid_t except, long idle_ms, int *closed)
{
    return held_in_tree(getpid(), except, idle_ms, closed);
}

int held_by(pid_t root)
{
    int closed;
    return root > 0 ? held_in_tree(root, 0, 0, &closed) : 0;
}

/* The mapping that starts at addr in /proc/PID/maps: its device and inode, as
 * text ("fd:01 1234"). 0, or -1 if there is none. */
static int mapping_at(pid_t pid, unsigned long addr, char *id, size_t size)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    int r = -1;
    while (f && r < 0 && fgets(line, sizeof line, f)) {
        unsigned long start, inode;
        char dev[32];
        if (sscanf(line, "%lx-%*x %*s %*s %31s %lu", &start, dev, &inode) == 3 && start == addr) {
            snprintf(id, size, "%s %lu", dev, inode);
            r = 0;
        }
    }
    if (f)
        fclose(f);
    return r;
}

/* Whether process pid maps the file (or shared memory) `id` names: 1 or 0, or -1
 * when its maps cannot be read or are empty (it is exiting, or a zombie). */
static int maps_id(pid_t pid, const char *id)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    int found = 0, lines = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        unsigned long inode;
        char dev[32], have[64];
        lines++;
        if (sscanf(line, "%*x-%*x %*s %*s %31s %lu", dev, &inode) == 2) {
            snprintf(have, sizeof have, "%s %lu", dev, inode);
            found = strcmp(have, id) == 0;
        }
    }
    if (f)
        fclose(f);
    return lines ? found : -1;
}

/* Which of the n sockets `inodes` pid holds while not mapping this instance's page
 * (a program started by exec), or -1. One exiting (its maps go first) or between
 * exec and closing its close-on-exec fds only looks so: it must hold 4 times. */
static int stranger(pid_t pid, const unsigned long *inodes, int n, const char *page)
{
    for (int i = 0;; i++) {
        struct socks s = { NULL, 0, 0 };
        int held = -1;
        list_sockets(pid, &s);
        for (int k = 0; k < s.n && held < 0; k++)
            for (int j = 0; j < n && held < 0; j++)
                held = s.v[k].inode == inodes[j] ? j : -1;
        free(s.v);
        if (held < 0 || maps_id(pid, page) != 0)
            return -1;
        if (i == 3)
            return held;
        usleep(20 * 1000);
    }
}

pid_t held_unfollowed_listener(int *fd)
{
    unsigned long inodes[HANDOFF_MAX_FDS];
    int fds[HANDOFF_MAX_FDS], n = 0;
    for (int l = reg_next(0, FD_LISTENER); l >= 0 && n < HANDOFF_MAX_FDS;
         l = reg_next(l + 1, FD_LISTENER)) {
        struct stat st;
        if (fstat(l, &st) == 0) {
            fds[n] = l;
            inodes[n++] = st.st_ino;
        }
    }
    char page[64];
    pid_t *pids = malloc(MAX_PROCESSES * sizeof *pids), found = 0;
    if (!pids || n == 0 || mapping_at(getpid(), (unsigned long)gen, page, sizeof page) < 0) {
        free(pids);
        return 0;
    }
    int m = process_tree(getpid(), 0, pids, MAX_PROCESSES);
    for (int i = 1, j; i < m && !found; i++) /* pids[0]: this process */
        if ((j = stranger(pids[i], inodes, n, page)) >= 0) {
            found = pids[i];
            *fd = fds[j];
        }
    free(pids);
    return found;
}
