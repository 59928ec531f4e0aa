/*
 * What the shim's direct system calls (csrc/direct.h) must keep as libc has it.
 *
 * Listens on PORT, prints "listening on PORT", accepts one client, then prints
 * the result and errno of each call the shim makes directly: with no thread of
 * its own, then (unless the second argument is "nothread") after it started and
 * joined a thread. The lines must be the same bare and under the shim. Last, a
 * forked child (one thread: the shim's restart thread stays in the parent)
 * cancels itself and calls accept(), a cancellation point: its cleanup handler
 * prints "cancelled in accept", and the parent exits 0 once it has.
 *
 *   cc -O2 -pthread -o direct_calls direct_calls.c && ./direct_calls PORT [nothread]
 */
#define _GNU_SOURCE
#include "http_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%s: %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "-");
}

static void round_of_calls(const char *name)
{
    printf("round %s\n", name);
    char buf[8] = "abc";
    struct iovec iov = { buf, 3 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    errno = 0;
    show("read bad fd", read(-1, buf, 1));
    show("write bad fd", write(-1, buf, 1));
    show("readv bad fd", readv(-1, &iov, 1));
    show("writev bad fd", writev(-1, &iov, 1));
    show("close bad fd", close(-1));
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        exit(3);
    show("recv empty", recv(sv[0], buf, 1, MSG_DONTWAIT));
    show("recvfrom empty", recvfrom(sv[0], buf, 1, MSG_DONTWAIT, NULL, NULL));
    show("recvmsg empty", recvmsg(sv[0], &msg, MSG_DONTWAIT));
    show("send", send(sv[1], "xyz", 3, 0));
    show("write", write(sv[1], "uv", 2));
    show("writev", writev(sv[1], &iov, 1));
    show("sendmsg", sendmsg(sv[1], &msg, 0));
    show("read", read(sv[0], buf, 3));
    show("readv", readv(sv[0], &iov, 1));
    show("recv", recv(sv[0], buf, 2, 0));
    show("recvmsg", recvmsg(sv[0], &msg, 0));
    show("close", close(sv[0]));
    show("send to closed peer", send(sv[1], "x", 1, MSG_NOSIGNAL));
    show("sendto to closed peer", sendto(sv[1], "x", 1, MSG_NOSIGNAL, NULL, 0));
    show("write to closed peer", write(sv[1], "x", 1));
    show("close", close(sv[1]));
    show("close again", close(sv[1]));
}

static void *nothing(void *arg) { return arg; }

static void said_cancelled(void *arg)
{
    (void)arg;
    printf("cancelled in accept\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        return 2;
    alarm(20); /* a cancel that never lands fails the test instead of hanging it */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int listener = listen_on(argv[1], 16);
    int c = accept(listener, NULL, NULL);
    printf("%s\n", c >= 0 ? "accepted" : "accept failed");
    close(c);
    round_of_calls("without a thread");
    if (argc == 2) {
        pthread_t t;
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
        round_of_calls("after a thread");
    }
    pid_t child = fork();
    if (child == 0) {
        pthread_cleanup_push(said_cancelled, NULL);
        pthread_cancel(pthread_self());
        accept(listener, NULL, NULL);
        pthread_cleanup_pop(0);
        printf("not cancelled\n");
        _exit(1);
    }
    int status = -1;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return 1;
    return WEXITSTATUS(status);
}
