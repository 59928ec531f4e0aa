/*
 * A thread blocked in accept() is cancelled (accept is a cancellation point);
 * then the main thread accepts one client. Prints "cancelled" and "accepted".
 *
 *   cc -pthread -o cancel_accept cancel_accept.c && ./cancel_accept PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener;

static void *blocked_in_accept(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c >= 0)
            close(c);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    alarm(20); /* a cancel that never lands fails the test instead of hanging it */
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(listener, 16) < 0) {
        perror("bind/listen");
        return 1;
    }
    pthread_t t;
    void *result = NULL;
    pthread_create(&t, NULL, blocked_in_accept, NULL);
    usleep(100000); /* usually in accept by now; a cancel that comes first waits for it */
    pthread_cancel(t);
    pthread_join(t, &result);
    printf("%s\n", result == PTHREAD_CANCELED ? "cancelled" : "not cancelled");
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    int c = accept(listener, NULL, NULL);
    printf("%s\n", c >= 0 ? "accepted" : "accept failed");
    return 0;
}
