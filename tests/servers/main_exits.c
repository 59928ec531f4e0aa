/*
 * The main thread ends before the process: with pthread_exit(), or (argument
 * "cancel") cancelled by the worker while it waits in pause(). The worker accepts
 * one client, answers "bye", and returns; glibc then ends the process (status 0).
 *
 *   cc -O2 -pthread -o main_exits main_exits.c && ./main_exits PORT [cancel]
 */
#define _GNU_SOURCE
#include "http_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener, cancel_main;
static pthread_t main_thread;

static void *worker(void *arg)
{
    (void)arg;
    int c = accept(listener, NULL, NULL);
    if (c >= 0) {
        ssize_t w = write(c, "bye\n", 4);
        (void)w;
        close(c);
    }
    if (cancel_main)
        pthread_cancel(main_thread);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        return 2;
    alarm(30); /* a process that never ends fails the test instead of hanging it */
    cancel_main = argc == 3 && strcmp(argv[2], "cancel") == 0;
    listener = listen_on(argv[1], 16);
    main_thread = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;
    if (cancel_main)
        for (;;)
            pause();
    pthread_exit(NULL);
}
