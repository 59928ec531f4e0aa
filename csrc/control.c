/* control.c - the instance record: gen-N page files and the events file (control.h). */
#define _GNU_SOURCE
#include "control.h"
#include "config.h"
#include "handoff.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int page_path(int number, char *buf, size_t size)
{
    if (!cfg.control)
        return -1;
    int n = cfg.slot >= 0 ? snprintf(buf, size, "%s/gen-%d-%d", cfg.control, number, cfg.slot)
                          : snprintf(buf, size, "%s/gen-%d", cfg.control, number);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

void *control_map_page(int number, size_t size)
{
    static int warned;
    char path[PATH_MAX];
    if (page_path(number, path, sizeof path) == 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 && ftruncate(fd, (off_t)size) == 0) {
            void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            REAL(close)(fd);
            if (page != MAP_FAILED)
                return page;
        } else if (fd >= 0) {
            REAL(close)(fd);
        }
        log_once(&warned, "no instance record in %s (%s): `huptime --status` and friends "
                 "will not see this generation", cfg.control, strerror(errno));
        unlink(path);
    }
    void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return page == MAP_FAILED ? NULL : page;
}

void control_forget(int number)
{
    char path[PATH_MAX];
    if (page_path(number, path, sizeof path) == 0)
        unlink(path);
}

void control_event(int number, const char *fmt, ...)
{
    if (!cfg.control)
        return;
    char path[PATH_MAX], line[512];
    if (snprintf(path, sizeof path, "%s/events", cfg.control) >= (int)sizeof path)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line, "%lld %d %d ", (long long)ts.tv_sec * 1000 +
                     ts.tv_nsec / 1000000, number, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_vformat(line, sizeof line, (size_t)n, fmt, ap);
    va_end(ap);
    for (size_t i = (size_t)n; i + 1 < len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, len); /* one write: lines never mix */
    (void)w;
    REAL(close)(fd);
}

static int describe(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    const char *udp = reg_kind(fd) == FD_DGRAM ? "udp:" : "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return snprintf(out, size, "%s%s:%d", udp, host, ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return snprintf(out, size, "%s[%s]:%d", udp, host, ntohs(in6->sin6_port));
    }
    const char *unix_kind = reg_kind(fd) == FD_DGRAM ? "unixgram:" : "unix:";
    if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (plen > 0 && un->sun_path[0] == '\0') /* abstract: printable part only */
            return snprintf(out, size, "%s@%.*s", unix_kind,
                            (int)strnlen(un->sun_path + 1, plen - 1), un->sun_path + 1);
        return snprintf(out, size, "%s%.*s", unix_kind, (int)strnlen(un->sun_path, plen),
                        un->sun_path);
    }
    return -1;
}

void control_describe_listeners(char *buf, size_t size)
{
    int fds[HANDOFF_MAX_FDS];
    int n = reg_handed_over(fds, HANDOFF_MAX_FDS);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        char one[160];
        int len = describe(fds[i], one, sizeof one);
        if (len <= 0 || (size_t)len >= sizeof one)
            continue;
        for (int j = 0; j < len; j++)  /* the list is space-separated */
            if (one[j] == ' ' || one[j] == '\n')
                one[j] = '?';
        if (used + (used > 0) + (size_t)len + 1 > size)
            break;
        if (used > 0)
            buf[used++] = ' ';
        memcpy(buf + used, one, (size_t)len + 1);
        used += (size_t)len;
    }
}
