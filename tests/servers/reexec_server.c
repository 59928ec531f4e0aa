/*
 * Test server in C that re-executes itself, same PID, keeping its listening socket:
 * on SIGUSR2 it stops accepting, finishes the connections it has, clears
 * close-on-exec on the listener and execs /proc/self/exe with LISTEN_FD and
 * LISTEN_PID in its environment (systemd's convention). The new image takes the
 * descriptor from there instead of binding. Clients that connect meanwhile wait in
 * the accept queue.
 *
 *   cc -O2 -pthread -o reexec_server reexec_server.c
 *   ./reexec_server PORT
 *
 * Answers GET / like cserver.c, the body line ending in "image=N": how many times
 * this process has re-executed itself. Prints "re-executing (image N)" before each
 * exec and "listening on PORT" once it accepts. $HT_BEHAVIOUR_FILE as in cserver.c.
 */
#include "http_common.h"

#include <pthread.h>
#include <signal.h>

static volatile sig_atomic_t reexec_asked;
static int active; /* connections being answered */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static int image;

static void on_usr2(int sig)
{
    (void)sig;
    reexec_asked = 1;
}

static void *serve_connection(void *arg)
{
    int fd = (int)(long)arg;
    char head[HEAD_LIMIT], extra[32];
    struct timeval timeout = {.tv_sec = 10};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    snprintf(extra, sizeof extra, "image=%d", image);
    if (read_head(fd, head, sizeof head) == 0)
        respond_once(fd, head, (long)getpid(), extra);
    close(fd);
    pthread_mutex_lock(&lock);
    if (--active == 0)
        pthread_cond_signal(&idle);
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* The listener this image was handed (LISTEN_FD for this PID), or -1. */
static int handed_listener(void)
{
    const char *fd = getenv("LISTEN_FD"), *pid = getenv("LISTEN_PID");
    if (fd == NULL || pid == NULL || atol(pid) != (long)getpid())
        return -1;
    return atoi(fd);
}

static void reexec(int listener, char **argv)
{
    char number[16];

    pthread_mutex_lock(&lock);
    while (active > 0)
        pthread_cond_wait(&idle, &lock);
    pthread_mutex_unlock(&lock);
    fcntl(listener, F_SETFD, 0);
    snprintf(number, sizeof number, "%d", listener);
    setenv("LISTEN_FD", number, 1);
    snprintf(number, sizeof number, "%ld", (long)getpid());
    setenv("LISTEN_PID", number, 1);
    snprintf(number, sizeof number, "%d", image + 1);
    setenv("HT_IMAGE", number, 1);
    printf("re-executing (image %d)\n", image + 1);
    fflush(stdout);
    execv("/proc/self/exe", argv);
    perror("execv");
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    const char *n = getenv("HT_IMAGE");
    image = n ? atoi(n) : 0;
    struct sigaction sa = {.sa_handler = on_usr2}; /* no SA_RESTART: accept returns EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    int listener = handed_listener();
    if (listener < 0) {
        obey_behaviour_file();
        listener = listen_on(argv[1], 128);
        fcntl(listener, F_SETFD, FD_CLOEXEC);
    } else {
        printf("listening on %s\n", argv[1]);
        fflush(stdout);
    }
    unsetenv("LISTEN_FD");
    unsetenv("LISTEN_PID");
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
        if (reexec_asked)
            reexec(listener, argv);
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                perror("accept");
                usleep(10000);
            }
            continue;
        }
        pthread_mutex_lock(&lock);
        active++;
        pthread_mutex_unlock(&lock);
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0) {
            close(conn);
            pthread_mutex_lock(&lock);
            active--;
            pthread_mutex_unlock(&lock);
        }
    }
}
