/* notify.c - sd_notify datagrams to NOTIFY_SOCKET. */
#define _GNU_SOURCE
#include "notify.h"
#include "config.h"
#include "handoff.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define NOTIFY_SOCKET "NOTIFY_SOCKET" /* systemd's variable, not one of huptime's */

static struct sockaddr_un where;
static socklen_t where_len; /* 0: no messages */

void notify_init(void)
{
    const char *path = huptime_env_get(cfg.envp, NOTIFY_SOCKET);
    if (getenv(NOTIFY_SOCKET))
        unsetenv(NOTIFY_SOCKET); /* the program's own messages could stop the unit */
    if (!path || cfg.supervisor_fd >= 0)
        return;
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
}

int notify_enabled(void) { return where_len > 0; }

unsigned long long notify_monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

void notify_send(const char *fmt, ...)
{
    static int warned;
    if (!where_len)
        return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof text)
        n = (int)sizeof text - 1;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, text, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&where,
                         where_len) < 0)
        log_once(&warned, "cannot notify the service manager (" NOTIFY_SOCKET "): %s",
                 strerror(errno));
    else
        LOG_DEBUG("notified the service manager: %s", text);
    if (fd >= 0)
        REAL(close)(fd);
}
