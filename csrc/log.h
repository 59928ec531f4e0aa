/* log.h - PID-tagged lines on stderr.
 *
 * Every line is "huptime[PID]: message\n", written with one write(2) so lines from
 * several processes do not interleave. Never call these from a signal handler.
 */
#ifndef HUPTIME_LOG_H
#define HUPTIME_LOG_H

#include <stdarg.h>
#include <stddef.h>

extern int log_debug_enabled;
/* Where the lines go: stderr, or once the shim is active a protected copy of the
 * first start's stderr, which the program's own redirections do not touch. */
extern int log_fd;

/* Always printed: lifecycle events (restart started, ready, rolled back, drained). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only with HUPTIME_DEBUG=1. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Append fmt after the first `used` bytes of line, truncated to fit, and a
 * newline; returns the line's whole length. Shared by every one-write line. */
size_t log_vformat(char *line, size_t size, size_t used, const char *fmt, va_list ap);

/* Log once per process for a given flag; returns without printing when *flag is set. */
void log_once(int *flag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) do { if (log_debug_enabled) log_debug(__VA_ARGS__); } while (0)

#endif
