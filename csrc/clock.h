/* clock.h - the one clock the shim measures timeouts and durations with. */
#ifndef HUPTIME_CLOCK_H
#define HUPTIME_CLOCK_H

#include <time.h>

/* Milliseconds on the monotonic clock (never jumps with the wall clock). */
static inline long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

#endif
