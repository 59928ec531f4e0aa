/* probe.c - run --probe, or --probe-http's GET, against the twins (probe.h). */
#define _GNU_SOURCE
#include "probe.h"
#include "check.h"
#include "config.h"
#include "clock.h"
#include "real.h"
#include "registry.h"
#include "twin.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_probe_variable(const char *entry)
{
    return strncmp(entry, ENV_PROBE_ADDR "=", sizeof ENV_PROBE_ADDR) == 0 ||
           strncmp(entry, ENV_PROBE_ADDRS "=", sizeof ENV_PROBE_ADDRS) == 0;
}

/* Wait until fd is ready for events, at most until deadline (now_ms()). */
static int wait_for(int fd, short events, long deadline)
{
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { fd, events, 0 };
        int r = REAL(poll)(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

/* The reply's status line from GET path on the twin at sa (where: its text), into
 * line; NULL if it came, else what went wrong. */
static const char *http_status(const struct sockaddr_storage *sa, socklen_t len,
                               const char *path, const char *where, long deadline,
                               char *line, size_t size)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return strerror(errno);
    reg_adopt(&fd, FD_INTERNAL);
    const char *err = NULL;
    int e = 0;
    socklen_t elen = sizeof e;
    char request[PROBE_HTTP_PATH_MAX + 256];
    int n = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
                     "huptime-probe\r\nConnection: close\r\n\r\n", path,
                     sa->ss_family == AF_UNIX ? "localhost" : where);
    size_t sent = 0, got = 0;
    if (connect(fd, (const struct sockaddr *)sa, len) < 0 && errno != EINPROGRESS)
        err = strerror(errno);
    else if (!wait_for(fd, POLLOUT, deadline))
        err = "no connection";
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 || e)
        err = strerror(e ? e : errno);
    while (!err && sent < (size_t)n) {
        ssize_t w = REAL(send)(fd, request + sent, (size_t)n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno == EAGAIN && wait_for(fd, POLLOUT, deadline))
            continue;
        else
            err = w < 0 && errno != EAGAIN ? strerror(errno) : "no room to send the request";
    }
    while (!err && got + 1 < size && !memchr(line, '\n', got)) {
        ssize_t r = REAL(read)(fd, line + got, size - 1 - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            err = got ? NULL : "the connection closed without a reply";
        else if (errno == EAGAIN && wait_for(fd, POLLIN, deadline))
            continue;
        else
            err = errno == EAGAIN ? "no reply" : strerror(errno);
        if (r == 0)
            break;
    }
    reg_release(&fd);
    line[got] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    return err;
}

/* --probe-http PATH: a 2xx status from the first twin. */
static int http_passes(char *why, size_t size)
{
    struct sockaddr_storage sa;
    socklen_t len;
    char where[128], line[512] = "";
    long deadline = now_ms() + cfg.probe_timeout_ms;
    const char *err = "no twin to probe";
    where[0] = '\0';
    if (twin_first(&sa, &len, where, sizeof where))
        err = http_status(&sa, len, cfg.probe_http, where, deadline, line, sizeof line);
    const char *code = strchr(line, ' ');
    if (!err && strncmp(line, "HTTP/", 5) == 0 && code && code[1] == '2' &&
        code[2] >= '0' && code[2] <= '9' && code[3] >= '0' && code[3] <= '9' &&
        (code[4] == ' ' || code[4] == '\0'))
        return 1;
    if (err && now_ms() >= deadline)
        snprintf(why, size, "--probe-http GET %s on %s: %s within %ld ms", cfg.probe_http, where,
                 err, cfg.probe_timeout_ms);
    else
        snprintf(why, size, "--probe-http GET %s on %s: %s", cfg.probe_http, where,
                 err ? err : line[0] ? line : "no status line");
    return 0;
}

int probe_passes(char *why, size_t size)
{
    if (cfg.probe_http)
        return http_passes(why, size);
    static char addr[256], addrs[HANDOFF_MAX_FDS * 260]; /* the restart thread's only */
    twin_describe(addr, sizeof addr, addrs, sizeof addrs);
    int n = 0;
    while (cfg.envp && cfg.envp[n])
        n++;
    char **envp = malloc((size_t)(n + 3) * sizeof *envp);
    if (!envp) {
        snprintf(why, size, "--probe could not run: out of memory");
        return 0;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!is_probe_variable(cfg.envp[i]))
            envp[k++] = cfg.envp[i];
    envp[k++] = addr;
    envp[k++] = addrs;
    envp[k] = NULL;
    char ran[400];
    int ok = check_command(cfg.probe, envp, cfg.probe_timeout_ms, ran, sizeof ran);
    free(envp);
    if (!ok)
        snprintf(why, size, "--probe %s", ran);
    return ok;
}
