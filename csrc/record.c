/* record.c - the instance record: gen-N page files and the events file (record.h). */
#define _GNU_SOURCE
#include "record.h"
#include "config.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int record_page_path(int number, char *buf, size_t size)
{
    if (!cfg.control)
        return -1;
    int n = cfg.slot >= 0 ? snprintf(buf, size, "%s/gen-%d-%d", cfg.control, number, cfg.slot)
                          : snprintf(buf, size, "%s/gen-%d", cfg.control, number);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

void *record_map_page(int number, size_t size)
{
    static int warned;
    char path[PATH_MAX];
    if (record_page_path(number, path, sizeof path) == 0) {
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
        REAL(unlink)(path);
    }
    void *page = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return page == MAP_FAILED ? NULL : page;
}

void record_forget(int number)
{
    char path[PATH_MAX];
    if (record_page_path(number, path, sizeof path) == 0)
        REAL(unlink)(path);
}

void record_event(int number, const char *fmt, ...)
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
