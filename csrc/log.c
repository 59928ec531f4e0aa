/* log.c - PID-tagged, single-write log lines on stderr. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int log_debug_enabled;

static void vlog(const char *fmt, va_list ap)
{
    char line[512];
    int saved = errno;
    int n = snprintf(line, sizeof line, "huptime[%d]: ", (int)getpid());
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)(n + m) > sizeof line - 2)
        m = (int)(sizeof line - 2) - n;
    line[n + m] = '\n';
    ssize_t w = write(2, line, (size_t)(n + m + 1));
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
