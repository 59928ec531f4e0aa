/* sockdiag.c - dumps of the kernel's socket tables (sockdiag.h). */
#define _GNU_SOURCE
#include "sockdiag.h"
#include "handoff.h"
#include "real.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { DUMP_BUFFER = 64 * 1024 };

void sockdiag_quiet(struct tcp_quiet *q, const void *info, size_t size, unsigned unread,
                    unsigned unsent)
{
    struct tcp_info ti;
    memset(&ti, 0, sizeof ti);
    memcpy(&ti, info, size < sizeof ti ? size : sizeof ti);
    *q = (struct tcp_quiet){
        .known = size >= offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof(__u32),
        .state = ti.tcpi_state, .unread = unread, .unsent = unsent,
        .unacked = ti.tcpi_unacked, .data_segs_out = ti.tcpi_data_segs_out,
        .last_sent_ms = ti.tcpi_last_data_sent, .last_recv_ms = ti.tcpi_last_data_recv,
    };
}

static int add(struct diag_list *l, unsigned long inode, const struct tcp_quiet *q)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        struct diag_sock *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].inode = inode;
    if (q)
        l->v[l->n].quiet = *q;
    else
        memset(&l->v[l->n].quiet, 0, sizeof l->v[l->n].quiet);
    l->n++;
    return 0;
}

void sockdiag_free(struct diag_list *l)
{
    free(l->v);
    *l = (struct diag_list){ NULL, 0, 0 };
}

struct query {
    struct diag_list *out;
    const struct unix_name *names;
    int n_names;
};

static int on_tcp(const struct nlmsghdr *h, const struct query *q)
{
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m) || !m->idiag_inode || m->idiag_state == ST_LISTEN)
        return 0;
    struct tcp_quiet quiet;
    memset(&quiet, 0, sizeof quiet);
    struct rtattr *a = (struct rtattr *)(m + 1);
    int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
        if (a->rta_type == INET_DIAG_INFO)
            sockdiag_quiet(&quiet, RTA_DATA(a), RTA_PAYLOAD(a), m->idiag_rqueue, m->idiag_wqueue);
    return add(q->out, m->idiag_inode, &quiet);
}

static int on_unix(const struct nlmsghdr *h, const struct query *q)
{
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m) || !m->udiag_ino || m->udiag_type != SOCK_STREAM ||
        m->udiag_state == ST_LISTEN)
        return 0;
    struct rtattr *a = (struct rtattr *)(m + 1);
    int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        size_t n = RTA_PAYLOAD(a);
        struct sockaddr_un name = { .sun_family = AF_UNIX };
        if (a->rta_type != UNIX_DIAG_NAME || n == 0 || n > sizeof name.sun_path)
            continue;
        memcpy(name.sun_path, RTA_DATA(a), n);
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        for (int i = 0; i < q->n_names; i++)
            if (huptime_sockaddr_same((struct sockaddr *)&name, len,
                                      (const struct sockaddr *)&q->names[i].addr, q->names[i].len))
                return add(q->out, m->udiag_ino, NULL);
    }
    return 0;
}

/* One dump: every message goes to each(). 0, or -1 (errno set). */
static int dump(const void *req, size_t size,
                int (*each)(const struct nlmsghdr *, const struct query *), const struct query *q)
{
    char *buf = malloc(DUMP_BUFFER);
    int s = buf ? socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG) : -1;
    if (s < 0) {
        free(buf);
        return -1;
    }
    struct {
        struct nlmsghdr h;
        union { struct inet_diag_req_v2 inet; struct unix_diag_req un; } body;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.h.nlmsg_len = NLMSG_LENGTH(size);
    msg.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.h.nlmsg_seq = 1;
    memcpy(&msg.body, req, size);
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    int r = -1;
    if (REAL(sendto)(s, &msg, msg.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        goto out;
    for (;;) {
        ssize_t n = REAL(recv)(s, buf, DUMP_BUFFER, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                r = 0;
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                errno = e->error ? -e->error : EPROTO;
                goto out;
            }
            if (each(h, q) < 0) {
                errno = ENOMEM;
                goto out;
            }
        }
    }
out:
    REAL(close)(s);
    free(buf);
    return r;
}

int sockdiag_tcp(struct diag_list *out, sa_family_t family, in_port_t port, int info)
{
    struct inet_diag_req_v2 req = {
        .sdiag_family = (unsigned char)family, .sdiag_protocol = IPPROTO_TCP,
        .idiag_ext = info ? 1 << (INET_DIAG_INFO - 1) : 0,
        .idiag_states = 0xfff & ~(1u << ST_LISTEN | 1u << ST_TIME_WAIT | 1u << ST_SYN_RECV),
        .id.idiag_sport = port,
    };
    struct query q = { out, NULL, 0 };
    return dump(&req, sizeof req, on_tcp, &q);
}

int sockdiag_unix(struct diag_list *out, const struct unix_name *names, int n)
{
    struct unix_diag_req req = { .sdiag_family = AF_UNIX, .udiag_states = ~(1u << ST_LISTEN),
                                 .udiag_show = UDIAG_SHOW_NAME };
    struct query q = { out, names, n };
    return dump(&req, sizeof req, on_unix, &q);
}
