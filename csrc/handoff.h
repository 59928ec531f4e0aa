/* handoff.h - encoding and decoding of what crosses execve (see docs/protocol.md).
 *
 * Pure functions over strings and sockaddrs: no global state, no I/O. They are
 * exported (huptime_*) so the test suite can call them through cffi.
 */
#ifndef HUPTIME_HANDOFF_H
#define HUPTIME_HANDOFF_H

#include <sys/socket.h>
#include <sys/types.h>

#include "protocol.h"

#define HUPTIME_API __attribute__((visibility("default")))

/* Parse a decimal integer in [0, max]; 0 on success, -1 on anything else
 * (empty, sign, junk, overflow). */
HUPTIME_API int huptime_parse_uint(const char *s, long max, long *out);

/* Parse "3,4,7" into out[]; returns the count, or -1 if malformed, a number is
 * above 65535, a number repeats, or there are more than max. "" gives 0. */
HUPTIME_API int huptime_parse_fd_list(const char *s, int *out, int max);

/* Format fds as "3,4,7" into buf; returns length, or -1 if it does not fit. */
HUPTIME_API int huptime_format_fd_list(const int *fds, int n, char *buf, size_t size);

/* 1 if two socket addresses name the same local endpoint: same family and, for
 * AF_INET/AF_INET6, the same address and port (and IPv6 scope); for AF_UNIX the
 * same path or abstract name. 0 otherwise. */
HUPTIME_API int huptime_sockaddr_same(const struct sockaddr *a, socklen_t alen,
                                      const struct sockaddr *b, socklen_t blen);

/* The text form of a socket's local address, as the listeners text writes it
 * (protocol.h): "127.0.0.1:8000", "[::1]:8000", "unix:/run/app.sock",
 * "unix:@name" (the printable part of an abstract name), with the prefix
 * "udp:" or "unixgram:" when dgram is 1. Spaces and newlines in a path become
 * '?', so the text is one word. Returns its length, or -1 for another family
 * or when it does not fit in size. */
HUPTIME_API int huptime_format_sockaddr(const struct sockaddr *sa, socklen_t len, int dgram,
                                        char *out, size_t size);

/* Value of NAME in a NULL-terminated environment, or NULL. */
HUPTIME_API const char *huptime_env_get(char *const *envp, const char *name);

/* Write a decimal pid into slot (at least 12 bytes), NUL-terminated.
 * Async-signal-safe: used between vfork and execve. */
HUPTIME_API void huptime_put_pid(char *slot, long pid);

/* What a new generation is handed. */
struct handoff {
    const int *fds;
    int nfds;
    int ready_fd;     /* -1: none */
    int generation;
    int pending;      /* 1: restart again once ready */
    const int *ignored;   /* exec mode: signals ignored at the first start; the */
    int nignored;         /* new image arrives with all ignored (-1: not so) */
    const int *stdio;     /* kept copies of the first start's stdout and stderr */
    int nstdio;           /* 2, or 0: none */
};

/* Build a new environment: base without any of the handoff's entries
 * (protocol.h: HUPTIME_FDS, _READY_FD, _GENERATION, _PENDING, _IGNORED_SIGNALS,
 * _PROTOCOL, _STDIO_FDS, _CONTROL_FD, _PID), plus those of h
 * (HUPTIME_IGNORED_SIGNALS when nignored >= 0, HUPTIME_STDIO_FDS when nstdio is 2),
 * HUPTIME_PROTOCOL=HUPTIME_PROTOCOL_VERSION, and a HUPTIME_PID entry whose value
 * *pid_slot points to (fill it with huptime_put_pid).
 * One malloc'd block; free() it. NULL on allocation failure. */
HUPTIME_API char **huptime_build_env(char *const *base, const struct handoff *h, char **pid_slot);
/* The same, plus HUPTIME_CONTROL_FD=control_fd (the instance record's directory)
 * when control_fd is above 2. */
HUPTIME_API char **huptime_build_env_control(char *const *base, const struct handoff *h,
                                             int control_fd, char **pid_slot);

/* 1 if entry ("NAME=value") sets a handoff variable of one start of the program
 * (every one but HUPTIME_PID and HUPTIME_GENERATION): a same-PID exec of the same
 * generation must not pass it on (reexec.h). */
int huptime_start_entry(const char *entry);

#endif
