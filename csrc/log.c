/* log.c - PID-tagged, single-write log lines on stderr. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int log_debug_enabled;
int log_fd = 2;

size_t log_vformat(char *line, size_t size, size_t used, const char *fmt, va_list ap)
{
    int m = vsnprintf(line + used, size - used - 1, fmt, ap);
    if (m < 0)
        m = 0;
    if (used + (size_t)m > size - 2)
        m = (int)(size - 2 - used);
    line[used + (size_t)m] = '\n';
    return used + (size_t)m + 1;
}

static void vlog(const char *fmt, va_list ap)
{
    char line[512];
    int saved = errno;
    int n = snprintf(line, sizeof line, "huptime[%d]: ", (int)getpid());
    size_t len = log_vformat(line, sizeof line, (size_t)n, fmt, ap);
    long w = syscall(SYS_write, log_fd, line, len); /* write() is interposed (io.c) */
    (void)w;
    errno = saved;
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!log_debug_enabled)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void log_once(int *flag, const char *fmt, ...)
{
    if (*flag)
        return;
    *flag = 1;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}
