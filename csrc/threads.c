/* threads.c - pthread_create and pthread_cancel: the program's first thread or
 * first cancel turns the direct system calls off (direct.h).
 *
 * Both set the flag before libc acts, so a thread the program starts, or a
 * cancel it sends, never meets a call made without libc's bookkeeping. One
 * window is left, and documented: a cancel sent to a thread that is already
 * inside a direct call (which needs a thread the program did not start through
 * pthread_create, such as a SIGEV_THREAD timer's) acts at the thread's next
 * cancellation point, not inside that call. A root file of the shim like
 * interpose.c.
 */
#define _GNU_SOURCE
#include "direct.h"
#include "handoff.h"
#include "real.h"

#include <pthread.h>

HUPTIME_API int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*start)(void *), void *arg)
{
    if (direct_ok())
        __atomic_store_n(&direct_off, 1, __ATOMIC_SEQ_CST);
    return REAL(pthread_create)(thread, attr, start, arg);
}

HUPTIME_API int pthread_cancel(pthread_t thread)
{
    __atomic_store_n(&direct_off, 1, __ATOMIC_SEQ_CST);
    return REAL(pthread_cancel)(thread);
}
