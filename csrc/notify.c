/* notify.c - sd_notify datagrams to NOTIFY_SOCKET. */
#define _GNU_SOURCE
#include "notify.h"
#include "config.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "protocol.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_SOCKET "NOTIFY_SOCKET" /* systemd's variable, not one of huptime's */

static struct sockaddr_un where;
static socklen_t where_len; /* 0: no messages */
static int fd_store;        /* FDSTORE set: the unit keeps descriptors (FileDescriptorStoreMax=) */

static int proxy = -1;       /* the program's NOTIFY_SOCKET: huptime's, in this leader */
static int program_ready;    /* the program sent READY=1 on it */

/* The program gets a socket of this leader's instead of the service manager's:
 * what it sends could stop the unit or move its main PID. */
static void open_proxy(void)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "huptime-notify-%d", (int)getpid());
    proxy = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (proxy >= 0 && REAL(bind)(proxy, (struct sockaddr *)&a,
                                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) == 0) {
        reg_adopt(&proxy, FD_INTERNAL);
        a.sun_path[0] = '@';
        setenv(NOTIFY_SOCKET, a.sun_path, 1);
        return;
    }
    log_info("no " NOTIFY_SOCKET " for the program: %s", strerror(errno));
    if (proxy >= 0)
        REAL(close)(proxy);
    proxy = -1;
}

void notify_init(void)
{
    const char *path = huptime_env_get(cfg.envp, NOTIFY_SOCKET);
    if (getenv(NOTIFY_SOCKET))
        unsetenv(NOTIFY_SOCKET); /* the program's own messages could stop the unit */
    if (!path)
        return;
    if (cfg.supervisor_fd >= 0) { /* the supervisor speaks; the program's READY=1 still gates */
        open_proxy();
        return;
    }
    const char *store = huptime_env_get(cfg.envp, "FDSTORE");
    fd_store = store && strcmp(store, "0") != 0;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof where.sun_path) {
        log_info("ignoring " NOTIFY_SOCKET "=%.60s: not a socket path or @name", path);
        return;
    }
    where.sun_family = AF_UNIX;
    memcpy(where.sun_path, path, n);
    if (path[0] == '@')
        where.sun_path[0] = '\0'; /* abstract */
    where_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    open_proxy();
}

int notify_proxy_fd(void) { return proxy; }

/* This process speaks for the service: generation 1 (until it hands over), exec
 * mode's image, or a generation its predecessor named with MAINPID=. */
static int main_process(void)
{
    return !gen_draining() && (gen->number == 1 || cfg.mode == MODE_EXEC || gen_is_ready());
}

void notify_proxy_read(void)
{
    char text[4096];
    ssize_t n;
    while (proxy >= 0 && (n = REAL(recv)(proxy, text, sizeof text - 1, MSG_DONTWAIT)) >= 0) {
        text[n] = '\0';
        char *at = NULL;
        for (char *line = strtok_r(text, "\n", &at); line; line = strtok_r(NULL, "\n", &at)) {
            if (strcmp(line, "READY=1") == 0 && !program_ready) {
                program_ready = 1;
                if (!cfg.notify_program && config_env_add(ENV_NOTIFY_PROGRAM "=1") == 0) {
                    cfg.notify_program = 1;
                    log_info("the program speaks sd_notify: a new generation is ready once "
                             "it also sent READY=1");
                }
            } else if ((strncmp(line, "STATUS=", 7) == 0 || strcmp(line, "WATCHDOG=1") == 0) &&
                       main_process()) {
                notify_send("%s", line); /* passed on; the rest is the service's own */
            }
        }
    }
}

int notify_program_ready(int timeout_ms)
{
    if (!cfg.notify_program || proxy < 0 || program_ready)
        return 1;
    struct pollfd p = { proxy, POLLIN, 0 };
    if (REAL(poll)(&p, 1, timeout_ms) > 0)
        notify_proxy_read();
    return program_ready;
}

int notify_enabled(void) { return where_len > 0; }

unsigned long long notify_monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* One datagram: text, with fds attached (SCM_RIGHTS) if n > 0. */
static void send_with(const char *text, size_t len, const int *fds, int n)
{
    static int warned;
    union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int) * HANDOFF_MAX_FDS)]; } c;
    struct iovec io = { (void *)text, len };
    struct msghdr m = { .msg_name = &where, .msg_namelen = where_len, .msg_iov = &io,
                        .msg_iovlen = 1 };
    if (n > 0) {
        memset(&c, 0, sizeof c);
        m.msg_control = c.space;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)n);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || REAL(sendmsg)(fd, &m, MSG_NOSIGNAL) < 0)
        log_once(&warned, "cannot notify the service manager (" NOTIFY_SOCKET "): %s",
                 strerror(errno));
    else
        LOG_DEBUG("notified the service manager: %s (%d descriptors)", text, n);
    if (fd >= 0)
        REAL(close)(fd);
}

void notify_send(const char *fmt, ...)
{
    if (!where_len)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n >= 0)
        send_with(text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1, NULL, 0);
}

void notify_serving(const int *fds, int n)
{
    if (!where_len)
        return;
    if (gen->number == 1 || cfg.mode == MODE_EXEC) /* else the predecessor named it */
        notify_send("READY=1\nSTATUS=generation %d serving (pid %d)", gen->number,
                    (int)getpid());
    if (fd_store && n > 0) {
        static const char store[] = "FDSTORE=1\nFDNAME=huptime";
        send_with(store, sizeof store - 1, fds, n < HANDOFF_MAX_FDS ? n : HANDOFF_MAX_FDS);
    }
}
