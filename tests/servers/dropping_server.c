/*
 * Test server in C that gives up root after bind, as daemons do: it listens as
 * root, then, only if it runs as root, drops its supplementary groups, its group
 * and its user for $HT_DROP_USER (default nobody). A new generation that huptime
 * starts from a generation that already dropped runs as that user from the start:
 * its bind() gets the inherited listener (no privilege needed) and it skips the
 * drop. Prints "generation N: dropped root for USER (uid U)" or "generation N:
 * already uid U", then serves like cserver.c: a blocking accept loop, a detached
 * thread per connection, GET / answers "pid=PID gen=N".
 *
 *   cc -O2 -pthread -o dropping-server dropping_server.c && ./dropping-server PORT
 */
#include "http_common.h"

#include <grp.h>
#include <pthread.h>
#include <pwd.h>

#define BACKLOG 128

static void *serve_connection(void *arg)
{
    serve_once((int)(long)arg, 0);
    return NULL;
}

static void drop_privileges(void)
{
    const char *generation = getenv("HUPTIME_GENERATION");
    const char *user = getenv("HT_DROP_USER");
    struct passwd *pw;

    if (!generation)
        generation = "0";
    if (getuid() != 0) {
        printf("generation %s: already uid %d\n", generation, (int)getuid());
        fflush(stdout);
        return;
    }
    if (!user)
        user = "nobody";
    if (!(pw = getpwnam(user)) || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        perror("dropping root");
        exit(1);
    }
    printf("generation %s: dropped root for %s (uid %d)\n", generation, user, (int)getuid());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    pthread_attr_t detached;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int listener = listen_on(argv[1], BACKLOG);
    drop_privileges();
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int conn = accept_client(listener);
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0)
            close(conn);
    }
}
