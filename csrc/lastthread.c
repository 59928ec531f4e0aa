/* lastthread.c - the program's threads all ended: so does the process. */
#define _GNU_SOURCE
#include "lastthread.h"
#include "children.h"
#include "log.h"
#include "signals.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define LOOK_MS 100 /* once the main thread ended */

static int main_ended;

static void main_thread_ended(void *value)
{
    (void)value;
    __atomic_store_n(&main_ended, 1, __ATOMIC_RELEASE);
    signals_wake();
}

void lastthread_watch(void)
{
    static pthread_key_t key;
    if (pthread_key_create(&key, main_thread_ended) == 0)
        pthread_setspecific(key, &main_ended); /* any value but NULL */
}

int lastthread_look_ms(void)
{
    return __atomic_load_n(&main_ended, __ATOMIC_ACQUIRE) ? LOOK_MS : -1;
}

void lastthread_end_if_alone(void)
{
    /* The main thread leads the thread group: ended, it stays counted (a zombie)
     * until the last thread ends. So two: it, and the restart thread. */
    if (!__atomic_load_n(&main_ended, __ATOMIC_ACQUIRE) || proc_stat_field(getpid(), 20) != 2)
        return;
    log_info("the program's threads have all ended; so does the process (status 0)");
    exit(0);
}
