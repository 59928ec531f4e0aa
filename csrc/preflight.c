/* preflight.c - whether a restart may begin, decided before anything starts. */
#define _GNU_SOURCE
#include "preflight.h"
#include "check.h"
#include "generation.h"
#include "handoff.h"
#include "held.h"
#include "log.h"
#include "protocol.h"
#include "real.h"
#include "record.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Every process that holds a listener of this generation is one the shim follows
 * (forked from the leader): a program started by fork+exec would never stop
 * accepting, and its clients would be cut when the generation ends. Then the
 * restart is refused before anything starts (docs/protocol.md). */
static int followed(int next)
{
    int fd = -1;
    pid_t who = held_unfollowed_listener(&fd);
    if (who <= 0)
        return 1;
    char comm[32] = "?", path[64], addr[128] = "?";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)who);
    FILE *f = fopen(path, "re");
    if (f) {
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) == 0)
        huptime_format_sockaddr((struct sockaddr *)&ss, len, 0, addr, sizeof addr);
    log_info("restart refused: pid %d (%s) holds the listener %s, but it runs a program the "
             "leader started by exec, which huptime does not follow: it would never stop "
             "accepting, and its clients would be cut when generation %d ends; generation %d "
             "keeps serving (start workers by fork)", (int)who, comm,
             addr, gen->number, gen->number);
    record_event(next, EVENT_FAILED " pid %d (%s) holds the listener %s but was started by "
                 "exec, which huptime does not follow", (int)who, comm, addr);
    return 0;
}

/* A restart needs something to hand over, and no more than a handoff carries;
 * otherwise it is refused before anything starts (logged, and recorded as a
 * failure of generation `next`). n: what reg_handed_over() returned. */
static int restartable(int n, int next)
{
    if (n > HANDOFF_MAX_FDS) {
        log_info("restart refused: %d sockets to hand over, at most %d are; generation %d "
                 "keeps serving", n, HANDOFF_MAX_FDS, gen->number);
        record_event(next, EVENT_FAILED " %d sockets to hand over, at most %d are", n,
                     HANDOFF_MAX_FDS);
        return 0;
    }
    if (n > 0)
        return followed(next);
    log_info("restart signal ignored: no listening socket yet");
    record_event(next, EVENT_FAILED " the program has no listening socket yet");
    return 0;
}

static int checked(int next)
{
    char why[400];
    if (check_passes(why, sizeof why))
        return 1;
    log_info("restart refused: --check %s; generation %d keeps serving", why, gen->number);
    record_event(next, EVENT_FAILED " --check %s", why);
    return 0;
}

int preflight(int n, int next)
{
    return restartable(n, next) && checked(next);
}
