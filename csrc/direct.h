/* direct.h - system calls on the connection path, made without libc's
 * cancellation bookkeeping while the program cannot ask for it.
 *
 * Once a process has a second thread, glibc wraps every blocking call (accept,
 * read, write, poll, close, ...) so that pthread_cancel() can act inside it:
 * about 30 instructions a call, on every request. The shim's restart thread makes
 * every program such a process, though the program never cancels anything. So
 * until the program starts a thread of its own or calls pthread_cancel()
 * (threads.c sees both, and turns this off for good), the shim's entry points on
 * the connection path make the call directly, as glibc does in a process with
 * one thread: the same system call, the same errno. After that they go through
 * libc, cancellation points as the program expects.
 */
#ifndef HUPTIME_DIRECT_H
#define HUPTIME_DIRECT_H

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

/* 1 once the program may cancel a thread: set, never cleared (threads.c). */
extern int direct_off __attribute__((visibility("hidden")));

static inline int direct_ok(void) { return !__atomic_load_n(&direct_off, __ATOMIC_RELAXED); }

#if defined(__x86_64__)
static inline long direct_raw3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}
static inline long direct_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
static inline long direct_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
                  x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e,
                  x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
static inline long direct_raw3(long nr, long a, long b, long c)
{
    return direct_raw6(nr, a, b, c, 0, 0, 0);
}
#else
static inline long direct_raw6(long nr, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(nr, a, b, c, d, e, f); /* not a cancellation point either */
    return r == -1 ? -errno : r;
}
static inline long direct_raw3(long nr, long a, long b, long c)
{
    return direct_raw6(nr, a, b, c, 0, 0, 0);
}
#endif

/* errno = -r; returns -1. Apart, so that a call that succeeds needs no frame. */
long direct_failed(long r) __attribute__((cold, noinline, visibility("hidden")));

/* The kernel's answer as libc returns it: -1 with errno set on failure. */
static inline long direct_result(long r)
{
    if (__builtin_expect((unsigned long)r > -4096UL, 0))
        return direct_failed(r);
    return r;
}

/* poll() made directly: the kernel's answer, -errno on failure. */
static inline long direct_poll(struct pollfd *p, nfds_t n, int timeout_ms)
{
#ifdef SYS_poll
    return direct_raw3(SYS_poll, (long)p, (long)n, timeout_ms);
#else /* aarch64 has only ppoll */
    struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
    return direct_raw6(SYS_ppoll, (long)p, (long)n, timeout_ms < 0 ? 0 : (long)&ts, 0, 0, 0);
#endif
}

#define DIRECT3(nr, a, b, c) direct_result(direct_raw3((nr), (long)(a), (long)(b), (long)(c)))
#define DIRECT6(nr, a, b, c, d, e, f)                                                    \
    direct_result(direct_raw6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
                              (long)(f)))
#endif
