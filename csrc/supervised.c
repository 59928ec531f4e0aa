/* supervised.c - the link to a huptime supervisor (supervised.h). */
#define _GNU_SOURCE
#include "supervised.h"
#include "config.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void supervised_init(void)
{
    if (cfg.supervisor_fd < 0)
        return;
    int type = 0;
    socklen_t len = sizeof type;
    struct stat st;
    if (fstat(cfg.supervisor_fd, &st) < 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(cfg.supervisor_fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        type != SOCK_SEQPACKET) {
        log_info("ignoring " ENV_SUPERVISOR_FD "=%d: not a seqpacket socket", cfg.supervisor_fd);
        cfg.supervisor_fd = -1;
        return;
    }
    reg_adopt(&cfg.supervisor_fd, FD_INTERNAL);
}

int supervised_fd(void)
{
    return cfg.supervisor_fd;
}

void supervised_report_serving(void)
{
    if (cfg.supervisor_fd < 0)
        return;
    /* Like inherited listeners, the link stays open across a wrapper's exec until
     * the generation is ready; from then on the program's own children must not
     * hold it (restarts pass it on explicitly). */
    REAL(fcntl64)(cfg.supervisor_fd, F_SETFD, FD_CLOEXEC);
    int fds[HANDOFF_MAX_FDS];
    int n = reg_handed_over(fds);
    if (n > HANDOFF_MAX_FDS) {
        static int said;
        log_once(&said, "%d sockets to hand over: the supervisor holds the first %d", n,
                 HANDOFF_MAX_FDS);
        n = HANDOFF_MAX_FDS;
    }
    char text[64];
    int len = snprintf(text, sizeof text, REPORT_SERVING " %d %d %d", gen->number,
                       (int)getpid(), cfg.slot);
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { text, (size_t)len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (n > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    if (REAL(sendmsg)(cfg.supervisor_fd, &msg, MSG_NOSIGNAL) < 0)
        log_info("cannot report to the supervisor: %s", strerror(errno));
}

int supervised_gone(void)
{
    char c;
    ssize_t r = REAL(recv)(cfg.supervisor_fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
}
